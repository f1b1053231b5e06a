package rendezvous

import (
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestTrustedProxyFlag(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	o.Register(fs)
	if err := fs.Parse([]string{"-trusted-proxy", "10.0.0.0/8", "-trusted-proxy", "192.168.1.7", "-trusted-proxy", "2001:db8::1/48"}); err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.7/32"),
		netip.MustParsePrefix("2001:db8::/48"),
	}
	if !slices.Equal(o.TrustedProxies, want) {
		t.Fatalf("trusted proxies %v, want %v", o.TrustedProxies, want)
	}
	for _, bad := range []string{"proxy.example", "10.0.0.0/33", ""} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		(&Options{}).Register(fs)
		if err := fs.Parse([]string{"-trusted-proxy", bad}); err == nil {
			t.Errorf("-trusted-proxy %q accepted", bad)
		}
	}
}

func TestTURNSecret(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, empty := file("secret", "s3cret\n"), file("empty", " \n")
	env := func(k string) string { return map[string]string{EnvTURNSecret: "from-env"}[k] }
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name    string
		o       Options
		want    string
		wantErr bool
	}{
		{name: "flag", o: Options{Secret: "flag"}, want: "flag"},
		{name: "file", o: Options{SecretFile: good}, want: "s3cret"},
		{name: "environment", o: Options{}, want: "from-env"},
		{name: "flag and file", o: Options{Secret: "flag", SecretFile: good}, wantErr: true},
		{name: "empty file", o: Options{SecretFile: empty}, wantErr: true},
		{name: "no file", o: Options{SecretFile: filepath.Join(dir, "none")}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.FromEnv(env)
			got, err := tc.o.turnSecret(log)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("secret %q, error %v; want %q (error: %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
