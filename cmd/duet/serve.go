package main

import (
	"context"
	"io"
	"os"

	"github.com/duetapp/duet/net/rendezvous"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", "serve [flags]", stderr)
	var o rendezvous.Options
	o.Register(fs)
	verbose := fs.Bool("v", false, "log every event")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.FromEnv(os.Getenv)
	return o.Run(ctx, stdout, newLogger(stderr, *verbose))
}
