package hookcmd_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

func TestArgsRoundTrip(t *testing.T) {
	withCeph := func(r hookcmd.Request) hookcmd.Request {
		r.Ceph.ID, r.Ceph.KeyFile, r.Ceph.MonHost = "shop", "/etc/rbd-dr/ceph/key", "192.0.2.1:6789,192.0.2.2:6789"
		return r
	}
	peer := withCeph(hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"pool/a"}, Timeout: time.Minute, Parallelism: 1, Pools: []string{"pool"}})
	peer.Peer.ID, peer.Peer.KeyFile, peer.Peer.MonHost = "rbd-dr-peer", "/etc/rbd-dr/peer/key", "198.51.100.1:6789"
	labPeer := withCeph(hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"pool/a"}, Timeout: time.Minute, Parallelism: 1, Pools: []string{"pool"}})
	labPeer.Peer.Conf, labPeer.Peer.ID, labPeer.Peer.Keyring = "/lab/site-b/ceph.conf", "rbd-dr-peer", "/lab/site-b/peer.keyring"
	promotePeer := peer
	promotePeer.Step, promotePeer.Force = hookcmd.Promote, true
	for _, r := range []hookcmd.Request{
		peer, labPeer, promotePeer,
		{Step: hookcmd.Quiesce, Namespace: "shop", Targets: []string{"data", "logs"}, Timeout: time.Minute, Parallelism: 2},
		{Step: hookcmd.Quiesce, Namespace: "shop", Targets: []string{"data"}, Timeout: time.Minute, Parallelism: 1, Kinds: []workload.Kind{
			{Group: "example.com", Version: "v1", Resource: "databases", Name: "Database", PodSpec: []string{"spec", "template", "spec"}, StopPath: []string{"spec", "replicas"}, StopValue: int64(0)},
			{Group: "example.com", Version: "v1beta1", Resource: "exports", Name: "Export", PodSpec: []string{"spec", "pod"}, StopPath: []string{"spec", "suspend"}, StopValue: true},
		}},
		withCeph(hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"pool/a", "pool/b"}, Timeout: 15 * time.Minute, Parallelism: 4, Pools: []string{"pool"}}),
		withCeph(hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"pool/a", "pool/ns/b"}, Namespace: "shop", Claims: []string{"data", "logs"}, Timeout: time.Minute, Parallelism: 1, Pools: []string{"pool", "pool/ns"}}),
		withCeph(hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"pool/a"}, Timeout: time.Minute, Parallelism: 1, ForcePromoted: true, Pools: []string{"pool"}}),
		withCeph(hookcmd.Request{Step: hookcmd.Promote, Targets: []string{"pool/a", "two/b"}, Timeout: time.Hour, Parallelism: 1, Force: true, Pools: []string{"pool", "two"}}),
		{Step: hookcmd.Resync, Targets: []string{"pool/a"}, Timeout: time.Hour, Parallelism: 1, ForcePromoted: true, Pools: []string{"pool"}},
		{Step: hookcmd.Prepare, Targets: []string{"p.1/i_2"}, Timeout: 30 * time.Second, Parallelism: 8, Pools: []string{"p.1"}},
	} {
		got, err := hookcmd.Parse(string(r.Step), r.Args())
		if err != nil {
			t.Errorf("%s %v: %v", r.Step, r.Args(), err)
			continue
		}
		if got.Step != r.Step || !slices.Equal(got.Targets, r.Targets) || got.Namespace != r.Namespace || !slices.Equal(got.Claims, r.Claims) ||
			got.Timeout != r.Timeout || got.Parallelism != r.Parallelism || got.Force != r.Force || got.ForcePromoted != r.ForcePromoted ||
			!slices.Equal(got.Pools, r.Pools) || got.Ceph != r.Ceph || got.Peer != r.Peer || !reflect.DeepEqual(got.Kinds, r.Kinds) {
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
		{"prepare", []string{"--force-promoted", "pool/img"}, "unknown flag: --force-promoted"},
		{"promote", []string{"--", "-rf/img"}, `"-rf/img" is not pool/image`},
		{"promote", []string{"pool/img@snap"}, "is not pool/image"},
		{"promote", []string{"poolimg"}, "is not pool/image"},
		{"promote", []string{"pool/a/b/c"}, "is not pool/image"},
		{"demote", nil, "give at least one pool/image"},
		{"demote", []string{"pool/img"}, "give --pools, the pools this app may move"},
		{"demote", []string{"--pools=pool", "pool/img", "other/img"}, "other/img is in pool other, which this app may not move (--pools=pool); nothing was done"},
		// a RADOS namespace confines: its pool alone, or another namespace of it, is refused
		{"demote", []string{"--pools=pool/teama", "pool/teama/img", "pool/img"}, "pool/img is in pool pool, which this app may not move (--pools=pool/teama)"},
		{"promote", []string{"--pools=pool/teama", "pool/teamb/img"}, "pool/teamb/img is in RADOS namespace pool/teamb, which this app may not move"},
		{"prepare", []string{"--pools=pool", "pool/teamb/img"}, "pool/teamb/img is in RADOS namespace pool/teamb, which this app may not move"},
		{"resync", []string{"--force-promoted", "--pools=pool,x", "y/img"}, "y/img is in pool y, which"},
		{"prepare", []string{"--pools=p", "--peer-ceph-conf=/x", "p/i"}, "unknown flag: --peer-ceph-conf"},
		{"promote", []string{"--pools=p", "--peer-ceph-keyfile=/k", "p/i"}, "need --peer-ceph-conf or --peer-ceph-mon-host"},
		{"demote", []string{"--pools=p", "--peer-ceph-id=ro", "p/i"}, "need --peer-ceph-conf or --peer-ceph-mon-host"},
		{"demote", []string{"--pools=p", "--peer-ceph-keyfile=/k", "p/i"}, "need --peer-ceph-conf or --peer-ceph-mon-host"},
		{"quiesce", []string{"data"}, `--namespace "" is not a namespace name`},
		{"demote", []string{"--pools=p", "--namespace=shop", "--claims=data", "p/a", "p/b"}, "--claims gives 1 PVCs for 2 images: give one per image"},
		{"demote", []string{"--pools=p", "--namespace=shop", "p/a"}, "--claims gives 0 PVCs for 1 images"},
		{"demote", []string{"--pools=p", "--claims=data", "p/a"}, `hook demote: --namespace "" is not a namespace name`},
		{"demote", []string{"--pools=p", "--namespace=shop", "--claims=Data_1", "p/a"}, `hook demote: "Data_1" is not a PVC name`},
		{"promote", []string{"--pools=p", "--claims=data", "p/a"}, "unknown flag: --claims"},
		{"quiesce", []string{"--namespace=shop", "Data_1"}, `"Data_1" is not a PVC name`},
		{"quiesce", []string{"--namespace=shop"}, "give at least one PVC name"},
		{"quiesce", []string{"--namespace=shop", "--workload-kind=example.com/v1/data;bases/Database:spec.template.spec:spec.replicas=0", "data"}, "resource"},
		{"demote", []string{"--pools=p", "--workload-kind=example.com/v1/databases/Database:spec.template.spec:spec.replicas=0", "p/i"}, "unknown flag: --workload-kind"},
		{"demote", []string{"--timeout=0s", "p/i"}, "--timeout must be positive"},
		{"demote", []string{"--parallelism=0", "p/i"}, "--parallelism must be at least 1"},
		{"failover", []string{"p/i"}, `unknown hook step "failover"`},
	}
	// a request built in code: the peer only for the steps that read it
	r := hookcmd.Request{Step: hookcmd.Resync, Targets: []string{"p/i"}, Timeout: time.Minute, Parallelism: 1, ForcePromoted: true, Pools: []string{"p"}, Peer: rbd.Conn{MonHost: "192.0.2.9:3300"}}
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "only demote and promote read the peer cluster") {
		t.Errorf("resync with a peer: %v", err)
	}
	for _, c := range cases {
		_, err := hookcmd.Parse(c.step, c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", c.step, c.args, err, c.want)
		}
	}
}

func TestImages(t *testing.T) {
	r, err := hookcmd.Parse("promote", []string{"--pools=pool,p.1", "pool/a", "p.1/i_2"})
	if err != nil {
		t.Fatal(err)
	}
	images, err := r.Images()
	if err != nil || len(images) != 2 || images[0].Pool != "pool" || images[0].Name != "a" || images[1].String() != "p.1/i_2" {
		t.Errorf("%v %v", images, err)
	}
	r.Targets = append(r.Targets, "bad")
	if _, err := r.Images(); err == nil || !strings.Contains(err.Error(), `hook promote: "bad" is not pool/image`) {
		t.Errorf("%v", err)
	}
}

// The defaults a Job runs with when its command line is silent are config's.
func TestFlagDefaults(t *testing.T) {
	r, err := hookcmd.Parse("demote", []string{"--pools=p", "p/i"})
	if err != nil || r.Timeout != config.DefaultStepTimeout || r.Parallelism != config.DefaultParallelism || r.Force || r.ForcePromoted {
		t.Errorf("%+v %v", r, err)
	}
	for _, step := range hookcmd.Steps {
		if step.Ceph() != (step != hookcmd.Quiesce) {
			t.Errorf("%s: Ceph() %t", step, step.Ceph())
		}
	}
}

// The connection flags exist on the Ceph steps only, and --force only on
// promote, also for a request built in code rather than parsed.
func TestCephFlags(t *testing.T) {
	r, err := hookcmd.Parse("demote", []string{"--pools=p", "--ceph-conf=/c", "--ceph-id=admin", "--ceph-keyring=/k", "--ceph-cluster=c1", "p/i"})
	if err != nil || r.Ceph.Conf != "/c" || r.Ceph.ID != "admin" || r.Ceph.Keyring != "/k" || r.Ceph.Cluster != "c1" {
		t.Errorf("%+v %v", r, err)
	}
	if _, err := hookcmd.Parse("quiesce", []string{"--namespace=shop", "--ceph-conf=/c", "data"}); err == nil || !strings.Contains(err.Error(), "unknown flag: --ceph-conf") {
		t.Errorf("%v", err)
	}
	forced := hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"p/i"}, Timeout: time.Minute, Parallelism: 1, Force: true, Pools: []string{"p"}}
	if err := forced.Validate(); err == nil || !strings.Contains(err.Error(), "--force is only for promote") {
		t.Errorf("%v", err)
	}
	forced.Step = hookcmd.Promote
	if err := forced.Validate(); err != nil {
		t.Errorf("%v", err)
	}
	// git's word on a forced failover reaches demote and resync only
	told := hookcmd.Request{Targets: []string{"p/i"}, Timeout: time.Minute, Parallelism: 1, ForcePromoted: true, Pools: []string{"p"}}
	for _, step := range hookcmd.Steps {
		told.Step = step
		err := told.Validate()
		if want := step == hookcmd.Demote || step == hookcmd.Resync; (err == nil) != want {
			t.Errorf("%s with ForcePromoted: %v", step, err)
		}
		if err != nil && !strings.Contains(err.Error(), "--force-promoted is only for demote and resync") {
			t.Errorf("%s: %v", step, err)
		}
	}
}

// --rpo reaches prepare, promote and rpo-check only; rpo-check needs it.
func TestRPOFlag(t *testing.T) {
	r, err := hookcmd.Parse("rpo-check", []string{"--pools=p", "--rpo=5m", "p/i"})
	if err != nil || r.RPO != 5*time.Minute {
		t.Fatalf("%+v %v", r, err)
	}
	back, err := hookcmd.Parse("rpo-check", r.Args())
	if err != nil || back.RPO != r.RPO {
		t.Errorf("round trip: %+v %v", back, err)
	}
	for _, c := range []struct{ step, rpo, want string }{
		{"rpo-check", "", "--rpo must be at least 1m,"},
		{"rpo-check", "--rpo=30s", "--rpo must be at least 1m,"},
		{"promote", "--rpo=-1m", "--rpo must be at least"},
		{"demote", "--rpo=5m", "unknown flag: --rpo"},
	} {
		args := []string{"--pools=p", "p/i"}
		if c.rpo != "" {
			args = append([]string{c.rpo}, args...)
		}
		if _, err := hookcmd.Parse(c.step, args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: got %v, want %q", c.step, c.rpo, err, c.want)
		}
	}
	built := hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"p/i"}, Timeout: time.Minute, Parallelism: 1, Pools: []string{"p"}, RPO: time.Minute}
	if err := built.Validate(); err == nil || !strings.Contains(err.Error(), "--rpo is only for prepare, promote and rpo-check") {
		t.Errorf("%v", err)
	}
	if r, err := hookcmd.Parse("prepare", []string{"--pools=p", "p/i"}); err != nil || r.RPO != 0 {
		t.Errorf("prepare without --rpo: %+v %v", r, err)
	}
	if r, err := hookcmd.Parse("rpo-check", []string{"--pools=p", "--rpo=1m", "p/i"}); err != nil || r.RPO != time.Minute {
		t.Errorf("rpo-check at the shortest schedule, 1m: %+v %v", r, err)
	}
	// A step without a promise writes no --rpo (demote has no such flag).
	for _, a := range (hookcmd.Request{Step: hookcmd.Demote, Targets: []string{"p/i"}, Timeout: time.Minute, Parallelism: 1, Pools: []string{"p"}}).Args() {
		if strings.HasPrefix(a, "--rpo") {
			t.Errorf("demote's command line has %s", a)
		}
	}
}
