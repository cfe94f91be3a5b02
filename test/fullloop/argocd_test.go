package fullloop

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

const (
	argoNS        = "argocd"
	askPassSocket = "/tmp/reposerver-ask-pass.sock" // util/askpass.SocketPath
)

var (
	crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	appGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "applications"}
	prjGVR = schema.GroupVersionResource{Group: "argoproj.io", Version: "v1alpha1", Resource: "appprojects"}
)

// argo is Argo CD as the suite runs it: host processes of Argo CD's own
// binary, configured by what manifests/ installed on the hub.
type argo struct {
	dir     string // its folder in the run folder
	apps    dynamic.NamespaceableResourceInterface
	appSets dynamic.NamespaceableResourceInterface
	sockDir string // where the cmp-server's socket lives
	// ports are the loopback ports of the daemons, by use.
	ports map[string]int
	redis string
	procs map[string]*proc
}

// installManifests is Argo CD's own install.yaml (from the module go.mod
// pins) with manifests/ as a kustomize component, in namespace argocd,
// built as a user's kustomization would be.
func (l *loop) installManifests(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/argoproj/argo-cd/v2").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("finding Argo CD's module (go mod download github.com/argoproj/argo-cd/v2): %v", err)
	}
	install, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "manifests", "install.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tree := filepath.Join(l.run, "install")
	user := filepath.Join(tree, "argocd")
	component, err := filepath.Rel(user, filepath.Join(l.root, "manifests"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"base/install.yaml":         string(install),
		"base/kustomization.yaml":   "resources:\n- install.yaml\n",
		"argocd/kustomization.yaml": "namespace: " + argoNS + "\nresources:\n- ../base\ncomponents:\n- " + filepath.ToSlash(component) + "\n",
	} {
		p := filepath.Join(tree, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), user)
	if err != nil {
		t.Fatalf("kustomize build of Argo CD's install.yaml with manifests/: %v", err)
	}
	y, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return decodeAll(t, y)
}

// install applies Argo CD and manifests/ to the hub server-side, registers
// the sites, and starts Argo CD's processes.
func (l *loop) install(ctx context.Context, t *testing.T) {
	l.argocd = filepath.Join(l.tool(t, "argocd"), "argocd")
	objs := l.installManifests(t)
	hub, err := newApplier(l.hub.admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.hub.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: argoNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The platform's own settings (manifests/settings with the suite's
	// settings.yaml) and each team's AppProject (manifests/tenant made the
	// team's from the settings).
	settings, err := os.ReadFile(l.app.settings)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range l.kustomizeBuild(t, "manifests/settings") {
		if o.GetKind() == "ConfigMap" {
			if err := unstructured.SetNestedField(o.Object, string(settings), "data", "settings.yaml"); err != nil {
				t.Fatal(err)
			}
		}
		o.SetNamespace(argoNS)
		objs = append(objs, o)
	}
	objs = append(objs, l.appProjects(t, l.tenants(t))...)
	begin := time.Now()
	if err := hub.applyAll(ctx, objs); err != nil {
		t.Fatalf("server-side apply of Argo CD + manifests/ to the hub: %v", err)
	}
	t.Logf("applied %d objects of Argo CD's install.yaml + manifests/ (+ settings/, tenant/ AppProject) server-side in %.1fs", len(objs), time.Since(begin).Seconds())

	a := &argo{dir: filepath.Join(l.run, "argocd"), procs: map[string]*proc{}}
	a.sockDir = filepath.Join(a.dir, "plugins")
	for _, d := range []string{a.dir, a.sockDir, filepath.Join(a.dir, "cmp-config"), filepath.Join(a.dir, "tls"), filepath.Join(a.dir, "ssh")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l.argo = a
	dyn, err := dynamic.NewForConfig(l.hub.admin)
	if err != nil {
		t.Fatal(err)
	}
	a.apps = dyn.Resource(appGVR)
	a.appSets = dyn.Resource(appSetGVR)

	l.argoSettings(ctx, t, dyn)
	for _, s := range l.app.sites() {
		l.registerSite(ctx, t, s)
	}
	l.startArgo(ctx, t)
}

// argoSettings is what argocd-server and the redis init Job would do in a
// real install: the server secret key and the default AppProject.
func (l *loop) argoSettings(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	patch, _ := json.Marshal(map[string]any{"stringData": map[string]string{"server.secretkey": base64.StdEncoding.EncodeToString(key)}})
	if _, err := l.hub.client.CoreV1().Secrets(argoNS).Patch(ctx, "argocd-secret", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("argocd-secret: %v", err)
	}
	project := &v1alpha1.AppProject{
		TypeMeta:   metav1.TypeMeta{APIVersion: "argoproj.io/v1alpha1", Kind: "AppProject"},
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: argoNS},
		Spec: v1alpha1.AppProjectSpec{
			SourceRepos:              []string{"*"},
			Destinations:             []v1alpha1.ApplicationDestination{{Server: "*", Namespace: "*"}},
			ClusterResourceWhitelist: []metav1.GroupKind{{Group: "*", Kind: "*"}},
		},
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(project)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(prjGVR).Namespace(argoNS).Create(ctx, &unstructured.Unstructured{Object: u}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("AppProject default: %v", err)
	}
}

// token is a ServiceAccount token from the cluster's TokenRequest API.
func token(ctx context.Context, c kubernetes.Interface, ns, sa string) (string, error) {
	tr, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authv1.TokenRequest{
		Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(6 * 3600))},
	}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("TokenRequest for %s/%s: %w", ns, sa, err)
	}
	return tr.Status.Token, nil
}

// registerSite gives Argo CD a cluster Secret for the site, with the token
// of a ServiceAccount on that site (what `argocd cluster add` does).
// siteIdentity decides what that ServiceAccount may do.
func (l *loop) registerSite(ctx context.Context, t *testing.T, site string) {
	t.Helper()
	c := l.sites[site]
	var namespaces []string
	for _, ten := range l.tenants(t) {
		namespaces = append(namespaces, ten.Namespace)
	}
	tok, err := l.siteIdentity(ctx, c, namespaces)
	if err != nil {
		t.Fatalf("site %s: %v", site, err)
	}
	cfg, _ := json.Marshal(map[string]any{
		"bearerToken":     tok,
		"tlsClientConfig": map[string]any{"caData": c.ca.certPEM},
	})
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-" + site, Namespace: argoNS, Labels: map[string]string{"argocd.argoproj.io/secret-type": "cluster"}},
		StringData: map[string]string{"name": site, "server": c.url, "config": string(cfg)},
	}
	if _, err := l.hub.client.CoreV1().Secrets(argoNS).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatalf("cluster Secret for %s: %v", site, err)
	}
}

// siteIdentity is who Argo CD's application controller is on a site: the
// ServiceAccount argocd/argocd-application-controller there, with no
// cluster-admin: it reads everything (Argo CD caches the whole cluster),
// writes the apps' own static PersistentVolumes and creates their
// namespaces, and is `admin` in the apps' namespaces (appNS), which lets it
// create the quiesce step's Role: it holds those rights itself. The hook
// Jobs, Ceph ones included, run in the app's namespace.
func (l *loop) siteIdentity(ctx context.Context, c *cluster, appNS []string) (string, error) {
	cs := c.client
	sa := "argocd-application-controller"
	subject := []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: argoNS}}
	if err := ensureNamespaces(ctx, cs, append([]string{argoNS}, appNS...)); err != nil {
		return "", err
	}
	if _, err := cs.CoreV1().ServiceAccounts(argoNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	roles := []*rbacv1.ClusterRole{
		{ObjectMeta: metav1.ObjectMeta{Name: "fullloop-argocd-read"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"get", "list", "watch"}},
			{NonResourceURLs: []string{"*"}, Verbs: []string{"get"}},
		}},
		{ObjectMeta: metav1.ObjectMeta{Name: "fullloop-argocd-app-cluster-objects"}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"persistentvolumes"}, Verbs: []string{"create", "update", "patch", "delete"}},
			{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"create"}},
		}},
	}
	for _, r := range roles {
		if _, err := cs.RbacV1().ClusterRoles().Create(ctx, r, metav1.CreateOptions{}); err != nil {
			return "", err
		}
		crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: r.Name},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: r.Name}, Subjects: subject}
		if _, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{}); err != nil {
			return "", err
		}
	}
	for _, ns := range appNS {
		rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "fullloop-argocd-admin", Namespace: ns},
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"}, Subjects: subject}
		if _, err := cs.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
			return "", err
		}
	}
	return token(ctx, cs, argoNS, sa)
}

func appendNew(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// tokenKubeconfig writes a kubeconfig for the hub with a ServiceAccount's
// token: Argo CD's processes run as their own ServiceAccounts of install.yaml.
func (l *loop) tokenKubeconfig(ctx context.Context, t *testing.T, sa string) string {
	t.Helper()
	tok, err := token(ctx, l.hub.client, argoNS, sa)
	if err != nil {
		t.Fatal(err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["hub"] = &clientcmdapi.Cluster{Server: l.hub.url, CertificateAuthorityData: l.hub.ca.certPEM}
	cfg.AuthInfos[sa] = &clientcmdapi.AuthInfo{Token: tok}
	cfg.Contexts[sa] = &clientcmdapi.Context{Cluster: "hub", AuthInfo: sa, Namespace: argoNS}
	cfg.CurrentContext = sa
	file := filepath.Join(l.argo.dir, sa+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, file); err != nil {
		t.Fatal(err)
	}
	return file
}

// pluginConfig writes the plugin.yaml the cmp-server loads, read back from
// the hub: the ConfigMap that manifests/ generated and the repo-server's
// rbd-dr sidecar mounts.
func (l *loop) pluginConfig(ctx context.Context, t *testing.T) string {
	t.Helper()
	cms, err := l.hub.client.CoreV1().ConfigMaps(argoNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=argocd-rbd-dr-plugin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != 1 || cms.Items[0].Data["plugin.yaml"] == "" {
		t.Fatalf("want one ConfigMap argocd-rbd-dr-plugin-<hash> with plugin.yaml on the hub, found %d", len(cms.Items))
	}
	dir := filepath.Join(l.argo.dir, "cmp-config")
	if err := os.WriteFile(filepath.Join(dir, "plugin.yaml"), []byte(cms.Items[0].Data["plugin.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("cmp-server config: plugin.yaml from ConfigMap %s/%s", argoNS, cms.Items[0].Name)
	return dir
}

// settingsFile writes the settings the sidecar reads, read back from the
// hub's ConfigMap argocd-rbd-dr-settings (what manifests/ mounts there).
func (l *loop) settingsFile(ctx context.Context, t *testing.T) string {
	t.Helper()
	cms, err := l.hub.client.CoreV1().ConfigMaps(argoNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=argocd-rbd-dr-settings"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cms.Items) != 1 || cms.Items[0].Data["settings.yaml"] == "" {
		t.Fatalf("want one ConfigMap argocd-rbd-dr-settings with settings.yaml on the hub, found %d", len(cms.Items))
	}
	file := filepath.Join(l.argo.dir, "settings.yaml")
	if err := os.WriteFile(file, []byte(cms.Items[0].Data["settings.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// startArgo starts redis and Argo CD's repo-server, cmp-server (with the
// plugin's binary on PATH) and application controller, all on loopback.
func (l *loop) startArgo(ctx context.Context, t *testing.T) {
	t.Helper()
	a := l.argo
	for _, name := range []string{"argocd-application-controller", "argocd-repo-server", "argocd-cmp-server", "argocd-applicationset-controller"} {
		if err := os.Symlink(l.argocd, filepath.Join(a.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	ports := map[string]int{}
	for _, p := range []string{"redis", "repo", "repo-metrics", "controller-metrics", "appset-metrics", "appset-probe", "appset-webhook"} {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[p] = port
	}
	port := func(p string) string { return strconv.Itoa(ports[p]) }
	redis := "127.0.0.1:" + port("redis")
	a.ports, a.redis = ports, redis
	mustStart := func(name string, env []string, bin string, args ...string) {
		p, err := start(a.dir, name, env, bin, args...)
		if err != nil {
			t.Fatal(err)
		}
		a.procs[name] = p
	}
	mustStart("redis", nil, "redis-server", "--bind", "127.0.0.1", "--port", port("redis"),
		"--save", "", "--appendonly", "no", "--dir", a.dir)

	cfgDir := l.pluginConfig(ctx, t)
	pathEnv := "PATH=" + l.bin + string(os.PathListSeparator) + os.Getenv("PATH")
	sock := "ARGOCD_PLUGINSOCKFILEPATH=" + a.sockDir
	settingsEnv := config.SettingsEnv + "=" + l.settingsFile(ctx, t)
	mustStart("argocd-cmp-server", []string{pathEnv, sock, settingsEnv, "ARGOCD_CMP_WORKDIR=" + filepath.Join(a.dir, "cmp-work")},
		filepath.Join(a.dir, "argocd-cmp-server"), "--config-dir-path", cfgDir, "--loglevel", "info")

	// Argo CD's repo-server keeps its git askpass socket at a fixed path in
	// /tmp; remove it after the run unless it was there before.
	if _, err := os.Stat(askPassSocket); os.IsNotExist(err) {
		l.cleanup = append(l.cleanup, func() { _ = os.Remove(askPassSocket) })
	}
	mustStart("argocd-repo-server", []string{sock, "ARGOCD_GPG_ENABLED=false",
		"ARGOCD_TLS_DATA_PATH=" + filepath.Join(a.dir, "tls"), "ARGOCD_SSH_DATA_PATH=" + filepath.Join(a.dir, "ssh")},
		filepath.Join(a.dir, "argocd-repo-server"), "--address", "127.0.0.1", "--port", port("repo"),
		"--metrics-address", "127.0.0.1", "--metrics-port", port("repo-metrics"),
		"--disable-tls", "--redis", redis, "--loglevel", "info")

	kubeconfig := l.tokenKubeconfig(ctx, t, "argocd-application-controller")
	// The controller's metrics listener binds 0.0.0.0 (Argo CD has no flag
	// for its address); it is the one listener not on loopback. Its
	// processors are Argo CD's defaults (20 status, 10 operation): an
	// operation holds its processor through each pause between waves, so
	// the fleet's ten Applications of a RollingSync step move together, as
	// docs/platform.md sizes it. The one run with twenty (one per
	// Application of the fleet's steady state) synced that state slower,
	// 82.5 s against 18.3-26.6 s, though beside rpo-check Jobs too.
	mustStart("argocd-application-controller", []string{"ARGOCD_FAKE_IN_CLUSTER=true", "KUBECONFIG=" + kubeconfig,
		"ARGOCD_SYNC_WAVE_DELAY=1"},
		filepath.Join(a.dir, "argocd-application-controller"), "--namespace", argoNS,
		"--repo-server", "127.0.0.1:"+port("repo"), "--repo-server-plaintext", "--redis", redis,
		"--metrics-port", port("controller-metrics"), "--loglevel", controllerLogLevel(),
		"--status-processors", "20", "--operation-processors", "10", "--self-heal-timeout-seconds", "2")
	l.startAppSetController(ctx, t, true)
	// Give them a moment to fail on bad flags or config.
	time.Sleep(3 * time.Second)
	for name, p := range a.procs {
		if err := p.exited(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// startAppSetController (re)starts Argo CD's ApplicationSet controller on
// the hub, with or without progressive syncs (RollingSync), every listener
// on loopback.
func (l *loop) startAppSetController(ctx context.Context, t *testing.T, progressive bool) {
	t.Helper()
	a := l.argo
	const name = "argocd-applicationset-controller"
	if p := a.procs[name]; p != nil {
		p.kill()
	}
	addr := func(p string) string { return "127.0.0.1:" + strconv.Itoa(a.ports[p]) }
	p, err := start(a.dir, name, []string{"KUBECONFIG=" + l.tokenKubeconfig(ctx, t, name)},
		filepath.Join(a.dir, name), "--namespace", argoNS,
		"--argocd-repo-server", addr("repo"), "--repo-server-plaintext",
		"--metrics-addr", addr("appset-metrics"), "--probe-addr", addr("appset-probe"), "--webhook-addr", addr("appset-webhook"),
		"--enable-progressive-syncs="+strconv.FormatBool(progressive), "--loglevel", "info")
	if err != nil {
		t.Fatal(err)
	}
	a.procs[name] = p
}

// controllerLogLevel is RBD_DR_FULLLOOP_CONTROLLER_LOGLEVEL or info: debug
// logs each refresh the controller asks for and why (slower, for a look at
// what Argo CD waited for; with RBD_DR_FULLLOOP_KEEP=1 to keep the log).
func controllerLogLevel() string {
	if v := os.Getenv("RBD_DR_FULLLOOP_CONTROLLER_LOGLEVEL"); v != "" {
		return v
	}
	return "info"
}
