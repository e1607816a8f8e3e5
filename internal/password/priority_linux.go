package password

import "golang.org/x/sys/unix"

// lowerThreadPriority sets the calling OS thread's nice value to 10: on
// Linux, PRIO_PROCESS with a thread id applies to that thread alone.
func lowerThreadPriority() error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10)
}
