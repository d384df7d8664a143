// HVTransport
