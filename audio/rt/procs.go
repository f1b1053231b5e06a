package rt

import (
	"runtime"
	"sync"
)

// procs orders changes to GOMAXPROCS, which is the whole process's.
var procs sync.Mutex

// AddProc gives the Go runtime one more processor (a P) for as long as a
// thread keeps one while it waits outside Go (in a system call such as
// poll(2)): Go takes such a P back only when its monitor next looks, up to
// 10 ms on, and until then the goroutines that thread wakes, and all the
// others, have one fewer. Measured in the JACK lab (net/peer's rtReader,
// 2 cores): with its P not made up, the voice was concealed 50-100 times a
// minute instead of 5-20. The func it returns takes the P back.
func AddProc() (remove func()) {
	addProcs(1)
	var once sync.Once
	return func() { once.Do(func() { addProcs(-1) }) }
}

func addProcs(n int) {
	procs.Lock()
	defer procs.Unlock()
	runtime.GOMAXPROCS(max(1, runtime.GOMAXPROCS(0)+n))
}
