// HVDaemon
