// Command duet is the Duet app: two singers on two computers sing a duet
// live over the internet.
//
//	duet                       open Duet's window
//	duet serve                 run a rendezvous server
//	duet host [flags]          open a room and sing with whoever joins
//	duet join CODE [flags]     join a room
//	duet demo                  a whole duet on this machine, with a report
//	duet devices               list the audio devices
//	duet calibrate [flags]     measure the audio device's real round trip
//
// Run "duet COMMAND -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	ossignal "os/signal"
	"strings"
	"syscall"

	_ "github.com/duetapp/duet/cmd/duet/internal/locale" // before Fyne's init: a locale it reads quietly
	"github.com/duetapp/duet/net/lan"
)

func main() {
	ctx, stop := ossignal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "duet:", err)
		os.Exit(1)
	}
}

const usage = `Duet: sing a duet live with someone on another computer.

Usage:
  duet [-v] [-listen ADDR]   open Duet's window (-v: log every event; -listen: the
                             address of its built-in rendezvous server, default :3838)
  duet serve [flags]         run a rendezvous server (room codes, connection set-up)
  duet host [flags]          open a room, print its code, sing with whoever joins
  duet join CODE [flags]     join the room with that code
  duet demo [flags]          a whole duet on this machine, with a report
  duet devices               list the audio devices
  duet calibrate [flags]     measure your audio device's round trip (loopback)

Run "duet COMMAND -h" for a command's flags.
`

// run dispatches to a subcommand. Only this package prints to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") && !isHelp(args[0]) {
		return runWindow(ctx, args, stdout, stderr)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, args, stdout, stderr)
	case "host":
		return runSing(ctx, true, args, stdout, stderr)
	case "join":
		return runSing(ctx, false, args, stdout, stderr)
	case "demo":
		return runDemo(ctx, args, stdout, stderr)
	case "devices":
		return runDevices(args, stdout, stderr)
	case "calibrate":
		return runCalibrate(ctx, args, stdout, stderr)
	}
	if isHelp(cmd) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// isHelp reports whether arg asks for the usage.
func isHelp(arg string) bool {
	return arg == "help" || arg == "-h" || arg == "-help" || arg == "--help"
}

// runWindow opens Duet's window, or runs the demo where there is no
// display.
func runWindow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("duet", "[-v] [-listen ADDR]", stderr)
	verbose := fs.Bool("v", false, "log every event")
	listen := fs.String("listen", lan.DefaultListen, "`address` of the window's built-in rendezvous server (port 0: the system chooses)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		fmt.Fprintln(stderr, "duet: no display here, so no window: here is the demo instead (duet -h lists the commands).")
		return runDemo(ctx, nil, stdout, stderr)
	}
	return runGUI(ctx, stderr, *verbose, *listen)
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: duet %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// newLogger logs to stderr: warnings and errors, or everything with -v.
func newLogger(stderr io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
}
