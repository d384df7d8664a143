// HVTesting
