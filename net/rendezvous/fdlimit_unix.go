//go:build unix

package rendezvous

import (
	"log/slog"
	"syscall"
)

// checkDescriptors warns when the process may open fewer than need file
// descriptors: the caps would then not be what stops a flood, accept
// failing for everyone would. (Go raises the soft limit to the hard one
// at start.)
func checkDescriptors(log *slog.Logger, need int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return
	}
	if rl.Cur < uint64(need) {
		log.Warn("the descriptor limit is below what the caps allow: raise it (ulimit -n, systemd LimitNOFILE=) or lower -max-sockets and -turn-allocations",
			"limit", rl.Cur, "needed", need)
	}
}
