package fullloop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rbd-dr/argocd-rbd-dr/internal/cephlab"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// lab is the two-site Ceph lab (hack/ceph-lab) with its own folder and
// addresses, so it runs next to a developer's or another suite's lab.
type lab struct {
	*cephlab.Lab
	conns map[string]cephConn // by the app's site name
	labOf map[string]string   // app site -> lab site (site-a, site-b)
	ips   map[string]string   // app site -> its mon address
}

// labIPs are the suite's lab's mon addresses, for the app's first and
// second site (another lab, e.g. a developer's, uses 127.0.0.1 and .2).
var labIPs = []string{"127.0.0.3", "127.0.0.4"}

type cephConn struct{ conf, keyring, id string }

func (c cephConn) args() []string {
	return []string{"--conf", c.conf, "--keyring", c.keyring, "--id", c.id}
}

// heavyLock takes the machine's heavy-job lock (RBD_DR_HEAVY_LOCK, default
// /tmp/rbd-dr-heavy.lock) for as long as the suite runs Ceph. The descriptor
// is close-on-exec, so the lab's daemons do not inherit (and keep) the lock.
func heavyLock(t *testing.T) func() {
	t.Helper()
	path := os.Getenv("RBD_DR_HEAVY_LOCK")
	if path == "" {
		path = "/tmp/rbd-dr-heavy.lock"
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("flock %s: %v", path, err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Logf("waited %.0fs for %s", d.Seconds(), path)
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }
}

// startLab brings up the two Ceph sites, the first of the app's sites on
// lab site-a and the second on site-b.
func (l *loop) startLab(t *testing.T) {
	t.Helper()
	sites := l.app.sites()
	if len(sites) != 2 {
		t.Fatalf("the Ceph lab has two sites; the app has %d (%v)", len(sites), sites)
	}
	lb := &lab{
		Lab:   cephlab.New(l.root, envOr("RBD_DR_FULLLOOP_LAB_DIR", "/tmp/rbd-dr-lab-fullloop"), labIPs...),
		conns: map[string]cephConn{},
		labOf: map[string]string{sites[0]: "site-a", sites[1]: "site-b"},
		ips:   map[string]string{sites[0]: labIPs[0], sites[1]: labIPs[1]},
	}
	// Sized for the fleet as docs/platform.md §7 says: rbd-mirror copies
	// every snapshot of a move (the schedule's, each demotion) through
	// rbd_mirror_concurrent_image_syncs slots, Ceph's default 5, so twenty
	// volumes moved by one commit would queue four deep.
	lb.Env = append(lb.Env, "CEPH_LAB_IMAGE_SYNCS="+envOr("RBD_DR_FULLLOOP_IMAGE_SYNCS", "20"))
	l.lab = lb
	// The lab and every Ceph client (the harness's, the hook Jobs' and the
	// app's) run the Ceph of RBD_DR_FULLLOOP_CEPH_SUITE: by default sid's
	// 20.2, the release current Rook runs; bookworm is the host's 16.2.
	suite := envOr("RBD_DR_FULLLOOP_CEPH_SUITE", "sid")
	path, err := lb.Release(l.root, suite, filepath.Join(l.run, "ceph-bin"))
	if err != nil {
		t.Fatal(err)
	}
	os.Setenv("PATH", path)
	version, err := cephlab.Version()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("fullloop: Ceph %s (Debian suite %s)\n", version, suite)
	if err := lb.Up(); err != nil {
		t.Fatal(err)
	}
	for _, s := range sites {
		c, err := lb.Conn(lb.labOf[s])
		if err != nil {
			t.Fatal(err)
		}
		lb.conns[s] = cephConn{conf: c.Conf, keyring: c.Keyring, id: c.ID}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func (lb *lab) down() {
	if err := lb.Down(); err != nil {
		fmt.Fprintf(os.Stderr, "fullloop: %v\n", err)
	}
}

// rbd runs the rbd CLI against a site's cluster as client.admin.
func (lb *lab) rbd(ctx context.Context, site string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "rbd", append(lb.conns[site].args(), args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("rbd %s on %s: %w: %s", strings.Join(args, " "), site, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// cephUser creates (or finds) the CephX user client.NAME on a site with the
// caps of a CephClient, as Rook does, and returns its key.
func (lb *lab) cephUser(site, name string, caps map[string]string) (string, error) {
	var pairs []string
	for _, k := range sortedKeys(caps) {
		pairs = append(pairs, k, caps[k])
	}
	key, err := lb.User(lb.labOf[site], name, pairs...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", site, err)
	}
	return key, nil
}

// primary says whether the image is primary on the site.
func (lb *lab) primary(ctx context.Context, site, spec string) (bool, error) {
	out, err := lb.rbd(ctx, site, "info", "--format", "json", spec)
	if err != nil {
		return false, err
	}
	var info struct {
		Mirroring struct {
			Primary bool `json:"primary"`
		} `json:"mirroring"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return false, err
	}
	return info.Mirroring.Primary, nil
}

// createImages creates every image the apps' rbd-dr.yaml files name,
// mirrored (snapshot mode), primary on each app's active site, and waits
// until the other site has its non-primary copy. The rbd calls run a few
// at a time: a fleet has dozens of images.
func (l *loop) createImages(ctx context.Context, t *testing.T, apps []*app) {
	t.Helper()
	var pools []string
	type image struct {
		spec, size, active string
		a                  *app
	}
	var images []image
	for _, a := range apps {
		for _, v := range a.policy.Volumes {
			if !slices.Contains(pools, v.Pool) {
				pools = append(pools, v.Pool)
			}
			images = append(images, image{v.Spec(), fmt.Sprintf("%dM", max(v.Quantity.Value()>>20, 1)), a.policy.ActiveSite, a})
		}
	}
	l.schedule(ctx, t, l.app.sites(), pools)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(6)
	for _, img := range images {
		g.Go(func() error {
			if _, err := l.lab.rbd(gctx, img.active, "create", "--size", img.size, "--image-feature", "layering,exclusive-lock", img.spec); err != nil {
				return err
			}
			_, err := l.lab.rbd(gctx, img.active, "mirror", "image", "enable", img.spec, "snapshot")
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(6)
	for _, img := range images {
		for _, s := range img.a.sites() {
			if s == img.active {
				continue
			}
			g.Go(func() error { return l.waitCopy(gctx, s, img.spec) })
		}
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// waitCopy waits until site has a non-primary copy of the image.
func (l *loop) waitCopy(ctx context.Context, site, spec string) error {
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		p, err := l.lab.primary(ctx, site, spec)
		return err == nil && !p, nil
	})
	if err != nil {
		return fmt.Errorf("%s never showed up as a non-primary copy on %s: %w", spec, site, err)
	}
	return nil
}

// schedule is the platform's half of the recovery point: a mirror snapshot
// schedule on each pool, on every site, at the promised interval.
func (l *loop) schedule(ctx context.Context, t *testing.T, sites, pools []string) {
	t.Helper()
	for _, s := range sites {
		for _, p := range pools {
			if _, err := l.lab.rbd(ctx, s, "mirror", "snapshot", "schedule", "add", "--pool", p, suiteRPO); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// mirror enables snapshot mirroring of every image of the app on its
// active site and waits until each other site has its non-primary copy.
func (l *loop) mirror(ctx context.Context, t *testing.T, a *app) {
	t.Helper()
	active := a.policy.ActiveSite
	for _, v := range a.policy.Volumes {
		if _, err := l.lab.rbd(ctx, active, "mirror", "image", "enable", v.Spec(), "snapshot"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range a.sites() {
		if s == active {
			continue
		}
		for _, v := range a.policy.Volumes {
			if err := l.waitCopy(ctx, s, v.Spec()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// settle waits until each image's newest own mirror snapshot on the app's
// active site has a complete copy on every other live site: the app at
// rest, as a planned relocation finds one in steady operation. Right after
// a bootstrap, the copies of the data the app just wrote are still in
// flight, and a demote waits for them (rbd-mirror's pace, which the Ceph
// suite measures): the 20-volume app's move took 36.6-43.4 s when it began
// minutes after its bootstrap and 53.5-59.5 s when it began seconds after.
// It returns how long it waited.
func (l *loop) settle(ctx context.Context, t *testing.T) time.Duration {
	t.Helper()
	begin := time.Now()
	active := l.app.policy.ActiveSite
	snaps := func(ctx context.Context, site, spec string) ([]rbd.Snapshot, error) {
		out, err := l.lab.rbd(ctx, site, "snap", "ls", "--all", "--format", "json", spec)
		if err != nil {
			return nil, err
		}
		var s []rbd.Snapshot
		return s, json.Unmarshal(out, &s)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(6)
	for _, v := range l.app.policy.Volumes {
		spec := v.Spec()
		g.Go(func() error {
			err := wait.PollUntilContextTimeout(gctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
				own, err := snaps(ctx, active, spec)
				if err != nil {
					return false, nil
				}
				newest, ok := rbd.LatestOwn(own)
				if !ok {
					return false, nil
				}
				for _, site := range l.app.sites() {
					if site == active || l.dead[site] {
						continue
					}
					theirs, err := snaps(ctx, site, spec)
					if err != nil {
						return false, nil
					}
					if c, ok := rbd.CopyOf(theirs, newest.ID); !ok || !c.Namespace.Complete {
						return false, nil
					}
				}
				return true, nil
			})
			if err != nil {
				return fmt.Errorf("%s: the newest snapshot on %s was not copied to every site in 3 minutes: %w", spec, active, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	return time.Since(begin)
}
