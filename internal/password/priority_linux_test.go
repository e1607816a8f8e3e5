package password

import (
	"context"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHasher_LowPriorityThreads: with LowPriority, work in a slot runs on a
// thread whose nice value is 10 above the process's (19 at most), and the
// caller's own thread keeps its priority; without it, slots run at the
// process's priority.
func TestHasher_LowPriorityThreads(t *testing.T) {
	// getpriority(2) returns 20 - nice: a lower value is a lower priority.
	prio := func() int {
		p, err := unix.Getpriority(unix.PRIO_PROCESS, unix.Gettid())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	low, err := New(fast, Options{Slots: 2, LowPriority: true})
	if err != nil {
		t.Fatal(err)
	}
	normal, err := NewHasher(fast, 2)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := unix.Getpriority(unix.PRIO_PROCESS, 0)
	for range 8 {
		var got int
		if err := low.Bounded(context.Background(), func() { got = prio() }); err != nil {
			t.Fatal(err)
		}
		if want := max(base-10, 1); got != want { // nice 19 at most
			t.Fatalf("a low-priority slot runs at %d (20 - nice), want %d", got, want)
		}
		if err := normal.Bounded(context.Background(), func() { got = prio() }); err != nil {
			t.Fatal(err)
		}
		if got != base {
			t.Fatalf("a normal slot runs at %d (20 - nice), want %d", got, base)
		}
	}
}
