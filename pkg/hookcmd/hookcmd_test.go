package hookcmd_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
)

func TestArgsRoundTrip(t *testing.T) {
	withCeph := func(r hookcmd.Request) hookcmd.Request {
		r.Ceph.ID, r.Ceph.KeyFile, r.Ceph.MonHost = "shop", "/etc/rbd-dr/ceph/key", "192.0.2.1:6789,192.0.2.2:6789"
		return r
	}
	for _, r := range []hookcmd.Request{
		{Step: hookcmd.Quiesce, Namespace: "shop", Targets: []string{"data", "logs"}, Timeout: time.Minute, Parallelism: 2},
		withCeph(hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"pool/a", "pool/b"}, Timeout: 15 * time.Minute, Parallelism: 4, Pools: []string{"pool"}}),
		withCeph(hookcmd.Request{Step: hookcmd.Promote, Targets: []string{"pool/a", "two/b"}, Timeout: time.Hour, Parallelism: 1, Force: true, Pools: []string{"pool", "two"}}),
		{Step: hookcmd.Resync, Targets: []string{"pool/a"}, Timeout: time.Hour, Parallelism: 1, ForcePromoted: true, Pools: []string{"pool"}},
		{Step: hookcmd.Prepare, Targets: []string{"p.1/i_2"}, Timeout: 30 * time.Second, Parallelism: 8, Pools: []string{"p.1"}},
	} {
		got, err := hookcmd.Parse(string(r.Step), r.Args())
		if err != nil {
			t.Errorf("%s %v: %v", r.Step, r.Args(), err)
			continue
		}
		if got.Step != r.Step || !slices.Equal(got.Targets, r.Targets) || got.Namespace != r.Namespace ||
			got.Timeout != r.Timeout || got.Parallelism != r.Parallelism || got.Force != r.Force || got.ForcePromoted != r.ForcePromoted ||
			!slices.Equal(got.Pools, r.Pools) || got.Ceph != r.Ceph {
			t.Errorf("round trip of %+v gave %+v", r, got)
		}
	}
}

// The safety rules of the contract: no --force but on promote, no resync
// without the forced-failover flag, no name that could be read as a flag.
func TestParseRefuses(t *testing.T) {
	cases := []struct {
		step string
		args []string
		want string
	}{
		{"demote", []string{"--force", "pool/img"}, "unknown flag: --force"},
		{"prepare", []string{"--force", "pool/img"}, "unknown flag: --force"},
		{"resync", []string{"pool/img"}, "refusing to run without --force-promoted"},
		{"promote", []string{"--force-promoted", "pool/img"}, "unknown flag: --force-promoted"},
		{"promote", []string{"--", "-rf/img"}, `"-rf/img" is not pool/image`},
		{"promote", []string{"pool/img@snap"}, "is not pool/image"},
		{"promote", []string{"poolimg"}, "is not pool/image"},
		{"promote", []string{"pool/a/b"}, "is not pool/image"},
		{"demote", nil, "give at least one pool/image"},
		{"demote", []string{"pool/img"}, "give --pools, the pools this app may move"},
		{"demote", []string{"--pools=pool", "pool/img", "other/img"}, "other/img is in pool other, which this app may not move (--pools=pool); nothing was done"},
		{"resync", []string{"--force-promoted", "--pools=pool,x", "y/img"}, "y/img is in pool y"},
		{"quiesce", []string{"data"}, `--namespace "" is not a namespace name`},
		{"quiesce", []string{"--namespace=shop", "Data_1"}, `"Data_1" is not a PVC name`},
		{"quiesce", []string{"--namespace=shop"}, "give at least one PVC name"},
		{"demote", []string{"--timeout=0s", "p/i"}, "--timeout must be positive"},
		{"demote", []string{"--parallelism=0", "p/i"}, "--parallelism must be at least 1"},
		{"failover", []string{"p/i"}, `unknown hook step "failover"`},
	}
	for _, c := range cases {
		_, err := hookcmd.Parse(c.step, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", c.step, c.args, err, c.want)
		}
	}
}
