package password

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// lowerThreadPriority adds 10 to the calling OS thread's nice value (up to
// 19): on Linux, PRIO_PROCESS with a thread id applies to that thread alone.
// Relative, so that a process started with a nice value of its own still
// hashes below its other threads; an unprivileged process may only lower a
// priority.
func lowerThreadPriority() error {
	tid := unix.Gettid()
	// getpriority(2) returns 20 - nice.
	p, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return fmt.Errorf("read the thread's priority: %w", err)
	}
	nice := min(20-p+10, 19)
	if nice <= 20-p {
		return nil
	}
	return unix.Setpriority(unix.PRIO_PROCESS, tid, nice)
}
