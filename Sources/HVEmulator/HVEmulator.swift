// HVEmulator
