// HVFileCopy
