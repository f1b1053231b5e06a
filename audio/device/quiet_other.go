//go:build !linux

package device

// quietDrivers has nothing to silence outside Linux.
func quietDrivers() {}
