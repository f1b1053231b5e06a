// Package pionlog adapts pion's LoggerFactory (webrtc, ice, dtls, turn) to
// log/slog, the one place Duet maps pion's levels: its Trace is dropped,
// its Debug and Info (it narrates ICE and DTLS in detail a singer never
// needs) are Debug, its Warn (routine events, such as packets racing a
// close) is Info, and Error stays Error.
package pionlog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// Factory makes pion loggers that write to log, each with its scope.
type Factory struct{ Log *slog.Logger }

// NewLogger returns the logger for one pion scope.
func (f Factory) NewLogger(scope string) logging.LeveledLogger {
	return logger{f.Log.With("pion", scope)}
}

type logger struct{ log *slog.Logger }

func (l logger) logf(level slog.Level, format string, args ...any) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (l logger) Trace(string)                      {}
func (l logger) Tracef(string, ...any)             {}
func (l logger) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l logger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Info(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l logger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l logger) Warn(msg string)                   { l.logf(slog.LevelInfo, "%s", msg) }
func (l logger) Warnf(format string, args ...any)  { l.logf(slog.LevelInfo, format, args...) }
func (l logger) Error(msg string)                  { l.logf(slog.LevelError, "%s", msg) }
func (l logger) Errorf(format string, args ...any) { l.logf(slog.LevelError, format, args...) }
