package fullloop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/failover"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// checkPeerReaders reads, for each rendered Job of site that reads a peer,
// every one of its images on the peer as the Job will: its --peer-ceph-*
// flags, with the key the Secret it mounts holds, through pkg/rbd as the
// step does. The same user must then fail to create an image there: the
// CephClient is read-only. The Jobs read a peer exactly when the settings
// give their namespace a peerReader (RBD_DR_FULLLOOP_SETTINGS may give none).
func (l *loop) checkPeerReaders(ctx context.Context, t *testing.T, site string, objs []*unstructured.Unstructured, secrets []*corev1.Secret) {
	t.Helper()
	settings, err := config.LoadSettings(l.app.settings)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	checked := map[string]bool{}
	for _, cj := range cephJobs(t, objs) {
		p := cj.req.Peer
		if !cj.req.Step.ReadsPeer() {
			continue
		}
		tenant, err := settings.Tenant(cj.job.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		if (tenant.PeerReader != nil) != (p != rbd.Conn{}) {
			t.Fatalf("%s's %s Job: peer flags %+v, but the settings' peerReader for %s is %+v", site, cj.req.Step, p, cj.job.Namespace, tenant.PeerReader)
		}
		if tenant.PeerReader == nil {
			t.Logf("%s: the %s Job reads no peer (no peerReader in the settings)", site, cj.req.Step)
			continue
		}
		name, item := keySource(cj.job, p.KeyFile)
		id := fmt.Sprint(p, name, item, cj.req.Targets)
		if checked[id] {
			continue // demote and promote read the same way
		}
		checked[id] = true
		var key string
		for _, s := range secrets {
			if s.Namespace == cj.job.Namespace && s.Name == name {
				key = s.StringData[item]
			}
		}
		keyFile := filepath.Join(dir, name+"-"+item)
		if err := os.WriteFile(keyFile, []byte(key), 0o600); err != nil {
			t.Fatal(err)
		}
		images, err := cj.req.Images()
		if err != nil {
			t.Fatal(err)
		}
		conn := rbd.Conn{ID: p.ID, KeyFile: keyFile, MonHost: p.MonHost}
		reader := rbd.NewClient(conn, failover.DefaultPeerCallTimeout)
		for _, img := range images {
			snaps, err := reader.Snapshots(ctx, img)
			if err != nil {
				t.Fatalf("%s's %s Job could not read its peer (%s as %s): %v", site, cj.req.Step, p.MonHost, p.ID, err)
			}
			t.Logf("%s's %s Job reads %s on its peer (%s as %s): %d snapshot(s)", site, cj.req.Step, img, p.MonHost, p.ID, len(snaps))
		}
		// In the images' own RADOS namespace: where the reader's caps reach.
		probe := rbd.Image{Pool: images[0].Pool, Namespace: images[0].Namespace, Name: "rbd-dr-peer-write-probe"}.String()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(wctx, "rbd", "--conf", os.DevNull, "--id", p.ID, "--keyfile", keyFile, "--mon_host", p.MonHost,
			"create", "--size", "1M", probe).CombinedOutput()
		cancel()
		if err == nil {
			peer, _ := l.app.siteOfMonitors(p.MonHost)
			_, _ = l.lab.rbd(ctx, peer, "rm", probe)
			t.Fatalf("the peer reader %s created %s on its peer: its caps are not read-only", p.ID, probe)
		}
		if msg := strings.TrimSpace(string(out)); !strings.Contains(msg, "Operation not permitted") {
			t.Fatalf("the peer reader %s's write on its peer failed, but not for want of rights: %v: %s", p.ID, err, msg)
		}
		t.Logf("%s's peer reader %s may not write on its peer (rbd create: Operation not permitted)", site, p.ID)
	}
}

// checkDemoteProof reads the report of a planned relocation's demote Job:
// with a peer reader, each image it demoted was proven copied by the peer's
// own snapshot list, or by the peer unlinking itself here, never by the
// status record alone, which is where demote ends up when it cannot read
// the peer (a wrong key, monitors or caps). A step of more than
// failover.DefaultSnapWatch images asks the shared status record before
// the peer's lists, so there the record's word counts too.
func (l *loop) checkDemoteProof(ctx context.Context, t *testing.T, site string, j *batchv1.Job) {
	t.Helper()
	settings, err := config.LoadSettings(l.app.settings)
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := settings.Tenant(j.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	log := l.jobLog(ctx, site, j)
	if !strings.Contains(log, "TARGET") {
		t.Fatalf("%s's demote Job %s left no report in its log: %q", site, j.Name, log)
	}
	rows := 0
	for _, line := range strings.Split(log, "\n") {
		if f := strings.Fields(line); len(f) < 4 || f[3] != "demoted" {
			continue
		}
		rows++
		fmt.Printf("fullloop: %s's demote Job reports: %s\n", site, strings.Join(strings.Fields(line), " "))
		if tenant.PeerReader != nil && !strings.Contains(line, "the peer holds a complete copy") && !strings.Contains(line, "unlinked itself") &&
			(len(l.app.policy.Volumes) <= failover.DefaultSnapWatch || !strings.Contains(line, "replayed")) {
			t.Errorf("%s's demote Job demoted without reading its peer as %s: %s", site, tenant.PeerReader.User, line)
		}
	}
	// A planned relocation demotes every declared image: a Job that demoted
	// fewer (or none) proves nothing about the rest.
	if want := len(l.app.policy.Volumes); rows != want {
		t.Errorf("%s's demote Job %s reports %d image(s) demoted, want the app's %d:\n%s", site, j.Name, rows, want, log)
	}
}
