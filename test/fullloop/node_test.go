package fullloop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/rbd-dr/argocd-rbd-dr/internal/cephlab"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// nodeName is the one Node of a site.
func nodeName(site string) string { return site + "-node" }

// startCeph brings up the Ceph lab under the heavy-job lock, the pools and
// images of every app, and does on each site what Rook and the platform
// team would, from the settings alone (tenant_test.go): the CephX user of
// each CephClient, and the Secrets with their keys in each namespace. The
// rendered Jobs must then find every key they read where the settings put
// it (cephSecrets reads what they mount). Then it reads the other site as
// each peer reader, as the Jobs will, and checks that it can write nothing
// there.
func (l *loop) startCeph(ctx context.Context, t *testing.T) {
	l.unlock = heavyLock(t)
	begin := time.Now()
	l.startLab(t)
	t.Logf("Ceph lab up in %.1fs (%s)", time.Since(begin).Seconds(), l.lab.Dir)
	begin = time.Now()
	tenants := l.tenants(t)
	l.grant(tenants)
	var pools, namespaces []string
	for _, ten := range tenants {
		for _, p := range ten.Pools {
			if p != "replicapool" && !slices.Contains(pools, p) {
				pools = append(pools, p)
			}
			if ten.RadosNamespace != "" {
				namespaces = append(namespaces, p+"/"+ten.RadosNamespace)
			}
		}
	}
	if err := l.lab.Pools(pools...); err != nil {
		t.Fatal(err)
	}
	if err := l.lab.Namespaces(namespaces...); err != nil {
		t.Fatal(err)
	}
	t.Logf("pools %v and RADOS namespaces %v made in %.1fs", pools, namespaces, time.Since(begin).Seconds())
	begin = time.Now()
	l.createImages(ctx, t, l.rendered())
	t.Logf("images made, mirrored and copied to every site in %.1fs", time.Since(begin).Seconds())
	begin = time.Now()
	defer func() {
		t.Logf("CephX users, Secrets and every app's peer reads checked in %.1fs", time.Since(begin).Seconds())
	}()
	caps := l.cephClients(t, tenants)
	// Each user is made once per site: every app's Jobs ask for the keys
	// they mount, and each ask is two ceph commands (seconds, in a root).
	keys := map[[2]string]string{}
	keyOf := func(site, user string) (string, error) {
		if key, ok := keys[[2]string{site, user}]; ok {
			return key, nil
		}
		c, ok := caps[user]
		if !ok {
			return "", fmt.Errorf("the Ceph Jobs read as %s, a user the settings give no namespace", user)
		}
		key, err := l.lab.cephUser(site, user, c)
		if err == nil {
			keys[[2]string{site, user}] = key
		}
		return key, err
	}
	sites := l.app.sites()
	for i, site := range sites {
		c := l.sites[site]
		l.nodeStage(ctx, t, site)
		var secrets []*corev1.Secret
		for _, ten := range tenants {
			secrets = append(secrets, tenantSecrets(t, ten, site, sites[(i+1)%len(sites)], keyOf)...)
		}
		for _, s := range secrets {
			if err := ensureNamespaces(ctx, c.client, []string{s.Namespace}); err != nil {
				t.Fatal(err)
			}
			if _, err := c.client.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
				t.Fatalf("site %s: %v", site, err)
			}
		}
		for _, a := range l.rendered() {
			objs := append(a.render(t, site, "active"), a.render(t, site, "passive")...)
			mounted, users := cephSecrets(t, objs, site, a.siteOfMonitors, keyOf)
			checkSecretsMatch(t, site, a, mounted, secrets)
			t.Logf("%s: %s's Jobs read as %v, their keys where the settings put them", site, a.name(), users)
			l.checkPeerReaders(ctx, t, site, objs, secrets)
		}
	}
}

// grant gives each app's volumes the RADOS namespace of the namespace it
// deploys to, as the plugin does (Settings.Grant, which the render checks):
// from here on the suite names every image as the Jobs do,
// pool/namespace/image in a namespace. The adoptee's volumes come later,
// from adopt, and get it as they are read (app.load).
func (l *loop) grant(tenants []*tenant) {
	for _, ten := range tenants {
		for _, a := range ten.apps {
			a.radosNamespace = ten.RadosNamespace
			for i := range a.policy.Volumes {
				a.policy.Volumes[i].Namespace = a.radosNamespace
			}
		}
	}
}

// siteSettings are the suite's settings and the entry of one site in them.
func (l *loop) siteSettings(t *testing.T, site string) (*config.Settings, config.SiteSettings) {
	t.Helper()
	settings, err := config.LoadSettings(l.app.settings)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := settings.Site(site)
	if !ok {
		t.Fatalf("site %s is not in the settings", site)
	}
	return settings, s
}

// writeCSIConfig writes ceph-csi's cluster config for a site as Rook
// publishes it: the site's clusterID, and one per RADOS namespace of the
// settings (Rook's CephBlockPoolRadosNamespace), with the site's monitors.
// The node agent stages a PV only through a clusterID it finds there.
func (l *loop) writeCSIConfig(t *testing.T, site, file string) {
	t.Helper()
	settings, s := l.siteSettings(t, site)
	entries := []cephlab.CSICluster{{ClusterID: s.ClusterID, Monitors: s.Monitors}}
	for _, ten := range settings.Namespaces {
		if ten.RadosNamespace == "" {
			continue
		}
		e := cephlab.CSICluster{ClusterID: ten.ClusterID(s), Monitors: s.Monitors}
		e.RBD.RadosNamespace = ten.RadosNamespace
		entries = append(entries, e)
	}
	body, err := json.MarshalIndent(entries, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkSecretsMatch fails unless every key a rendered Job reads (mounted)
// is in a Secret the platform made from the settings, holding the same key.
func checkSecretsMatch(t *testing.T, site string, a *app, mounted, made []*corev1.Secret) {
	t.Helper()
	for _, m := range mounted {
		i := slices.IndexFunc(made, func(s *corev1.Secret) bool { return s.Namespace == m.Namespace && s.Name == m.Name })
		if i < 0 {
			t.Fatalf("%s: %s's Jobs mount Secret %s/%s, which the settings do not name", site, a.name(), m.Namespace, m.Name)
		}
		for item, key := range m.StringData {
			if got, ok := made[i].StringData[item]; !ok || got != key {
				t.Fatalf("%s: %s's Jobs read key %s of Secret %s/%s as another user's key than the settings put there", site, a.name(), item, m.Namespace, m.Name)
			}
		}
	}
}

// startNodes starts one node agent per site and waits for its Node to be Ready.
func (l *loop) startNodes(ctx context.Context, t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("node agents built, started and Ready in %.1fs", time.Since(begin).Seconds()) }()
	l.goBuild(t, "nodeagent", "./test/fullloop/nodeagent")
	ours, ceph := hookImages(t, l.app.render(t, l.app.sites()[0], "active"))
	// The pods (the apps, the hook Jobs, the rpo-checks) run niced: here
	// they share two cores with three API servers and Argo CD, which on a
	// real installation run on nodes of their own. Starved, Argo CD's
	// application controller timed out on a Lua health check (a fixed one
	// second), failed the running sync with a ComparisonError, and its
	// retry re-ran the PreSync hooks mid-move.
	nice, err := strconv.Atoi(envOr("RBD_DR_FULLLOOP_POD_NICE", "10"))
	if err != nil || nice < 0 || nice > 19 {
		t.Fatalf("RBD_DR_FULLLOOP_POD_NICE=%q: give a niceness from 0 to 19", os.Getenv("RBD_DR_FULLLOOP_POD_NICE"))
	}
	for _, site := range l.app.sites() {
		c := l.sites[site]
		node := nodeName(site)
		kubeconfig, err := c.kubeconfig("node", "system:node:"+node, "system:nodes")
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(c.dir, "node")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		conn := l.lab.conns[site]
		csiConfig := filepath.Join(dir, "ceph-csi-config.json")
		l.writeCSIConfig(t, site, csiConfig)
		p, err := start(c.dir, "nodeagent", nil, filepath.Join(l.bin, "nodeagent"), "agent",
			"--kubeconfig", kubeconfig, "--node", node, "--dir", dir, "--api", strings.TrimPrefix(c.url, "https://"),
			"--our-image", ours, "--our-binary", filepath.Join(l.bin, "argocd-rbd-dr"), "--ceph-image", ceph,
			"--ceph-root", l.lab.CephRoot, "--ceph-conf", conn.conf, "--csi-config", csiConfig, "--pod-nice", strconv.Itoa(nice))
		if err != nil {
			t.Fatal(err)
		}
		l.nodes[site] = p
		c.procs = append(c.procs, p)
		go loadBalancers(l.bg, c)
	}
	for _, site := range l.app.sites() {
		c := l.sites[site]
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			if err := l.nodes[site].exited(); err != nil {
				return false, err
			}
			n, err := c.client.CoreV1().Nodes().Get(ctx, nodeName(site), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("node of %s not Ready: %v", site, err)
		}
	}
}

// podLog is a container's log as the node agent keeps it.
func (l *loop) podLog(site string, pod *corev1.Pod, container string) string {
	b, err := os.ReadFile(filepath.Join(l.sites[site].dir, "node", "pods", string(pod.UID), "logs", container+".log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return string(b)
}

// nodeStageUser is the CephX user Rook makes for ceph-csi's node plugin.
const nodeStageUser = "csi-rbd-node"

// nodeStage does on site what Rook does for ceph-csi: the node plugin's
// CephX user, with Rook's caps, and its key in the node-stage Secret the
// settings name (keys userID and userKey). The app stand-in maps every
// volume with it, as ceph-csi would, never with the lab's admin key.
func (l *loop) nodeStage(ctx context.Context, t *testing.T, site string) {
	t.Helper()
	_, s := l.siteSettings(t, site)
	key, err := l.lab.cephUser(site, nodeStageUser, map[string]string{"mon": "profile rbd", "mgr": "allow rw", "osd": "profile rbd"})
	if err != nil {
		t.Fatal(err)
	}
	c := l.sites[site].client
	ref := s.NodeStageSecret
	if err := ensureNamespaces(ctx, c, []string{ref.Namespace}); err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}, StringData: map[string]string{"userID": nodeStageUser, "userKey": key}}
	if _, err := c.CoreV1().Secrets(ref.Namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("site %s: the node-stage Secret: %v", site, err)
	}
}
