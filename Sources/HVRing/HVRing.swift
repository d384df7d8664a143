// HVRing
