//go:build !linux

package password

// lowerThreadPriority does nothing outside Linux, where a thread's priority
// is not set this way.
func lowerThreadPriority() error { return nil }
