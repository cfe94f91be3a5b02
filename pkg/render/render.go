// Package render turns an app folder and its FailoverPolicy into what one
// site applies: the site's kustomize overlay, built through the repository's read-only view (pkg/repofs), with the static
// ceph-csi volumes bound and the PreSync hook Jobs of the site's role.
package render

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/repofs"
	model "github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// Role is what a site is doing for the app.
type Role string

// The two roles of the table in docs/architecture.md.
const (
	Active  Role = "active"
	Passive Role = "passive"
)

// ParseRole reads a role name; "" means "as rbd-dr.yaml says".
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case "", Active, Passive:
		return Role(s), nil
	}
	return "", fmt.Errorf("role %q is not active or passive", s)
}

// Options say which site to render and where the repository is.
type Options struct {
	// RepoRoot is the repository the cmp-server unpacked; nothing outside it is read.
	RepoRoot string
	// AppDir is the app folder, holding rbd-dr.yaml.
	AppDir string
	// Site is the site being rendered.
	Site string
	// Role overrides the role activeSite gives the site (for validate and tests).
	Role Role
	// Namespace is the app's namespace (ARGOCD_APP_NAMESPACE, the
	// Application's destination, which its AppProject allowed); default
	// apps.namespace of rbd-dr.yaml. Every object of the app lives there.
	Namespace string
	// Settings are the platform's: clusters, Ceph connection facts, images,
	// and what each namespace may move. Required.
	Settings *config.Settings
	// Version is the renderer's own version, which every hook container is
	// told (hookcmd.RendererVersionEnv) so that a hook binary of another
	// release refuses to run; "" tells nothing (plan renders no Jobs to run).
	Version string
}

// placement is where and as whom one site of the app runs: the team's policy
// joined with the platform's settings for that site and namespace.
type placement struct {
	policy *config.Policy
	site   config.Site
	ceph   config.SiteSettings
	// peer is the other site's settings, when the policy has exactly two
	// sites: the one cluster that this site mirrors with.
	peer   *config.SiteSettings
	tenant config.TenantSetting
	images config.Images
	pods   config.HookPods
	// kinds are the workload kinds known here: built in and taught by the settings.
	kinds model.Catalog
	// stops are the kinds beyond model.Core that the app has and quiesce
	// must stop too (a Rollout, a kind the settings teach).
	stops     []model.Kind
	namespace string
	version   string
}

// place checks the policy against the settings for the site and namespace.
func place(p *config.Policy, s *config.Settings, siteName, namespace, version string) (*placement, error) {
	if s == nil {
		return nil, config.NoSettingsError()
	}
	site, ok := p.Site(siteName)
	if !ok {
		return nil, fmt.Errorf("site %q is not in %s (sites: %s); set the Application's SITE to one of them", siteName, p.File, strings.Join(p.SiteNames(), ", "))
	}
	if namespace == "" {
		namespace = p.Apps.Namespace
	}
	if errs := validation.IsDNS1123Label(namespace); len(errs) > 0 {
		return nil, fmt.Errorf("the app's namespace %q is not a namespace name: %s; fix the Application's destination namespace", namespace, errs[0])
	}
	tenant, err := s.Grant(p, namespace)
	if err != nil {
		return nil, err
	}
	ceph, _ := s.Site(site.Name) // Grant checked that every site is known
	pl := &placement{policy: p, site: site, ceph: ceph, tenant: tenant, images: s.Images, pods: s.HookPods, kinds: s.Workloads(), namespace: namespace, version: version}
	// The steps read one peer (pkg/failover takes the first peer site rbd
	// reports): with three sites or more, which one is not for render to guess.
	if len(p.Sites) == 2 {
		other := p.Sites[0].Name
		if other == site.Name {
			other = p.Sites[1].Name
		}
		peer, _ := s.Site(other) // Grant checked that every site is known
		pl.peer = &peer
	}
	return pl, nil
}

// Result is one site's rendering.
type Result struct {
	Site config.Site
	Role Role
	// App is the overlay's objects, with PVCs bound and, when passive, stopped.
	App resmap.ResMap
	// Volumes are the static PersistentVolumes, then PVCs the overlay lacked.
	Volumes []Object
	// Hooks are the PreSync hook objects, in wave order.
	Hooks []Object
	// Checks are the app's own objects that watch it on this site, on both
	// roles: the rpo-check CronJob.
	Checks []Object
}

// Object is a rendered Kubernetes object in its unstructured form.
type Object = map[string]any

// Render builds one site of the app.
func Render(p *config.Policy, o Options) (*Result, error) {
	pl, err := place(p, o.Settings, o.Site, o.Namespace, o.Version)
	if err != nil {
		return nil, err
	}
	site := pl.site
	role := o.Role
	if role == "" {
		role = Passive
		if p.IsActive(site.Name) {
			role = Active
		}
	}
	fs, err := repofs.New(o.RepoRoot)
	if err != nil {
		return nil, err
	}
	overlay := filepath.Join(o.AppDir, filepath.FromSlash(site.Overlay))
	if err := preflight(fs, overlay, map[string]bool{}); err != nil {
		return nil, fmt.Errorf("site %s overlay %s: %w", site.Name, site.Overlay, err)
	}
	// The hooks depend on the site, its role and the namespace only: they
	// are built on the spare core while kustomize runs.
	type built struct {
		objs []Object
		err  error
	}
	hooksBuilt := make(chan built, 1)
	go func() {
		objs, err := hooks(pl, role)
		hooksBuilt <- built{objs, err}
	}()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionUnspecified // as the kustomize CLI does
	app, err := krusty.MakeKustomizer(opts).Run(fs, overlay)
	if err != nil {
		return nil, fmt.Errorf("site %s overlay %s: kustomize: %w", site.Name, site.Overlay, err)
	}

	// The checks read the overlay as the active site runs it: before the
	// passive transform stops its workloads.
	r := &Result{Site: site, Role: role, App: app}
	// A refusal names the file its object comes from (sources.go).
	refused := func(err error) error {
		return fmt.Errorf("site %s overlay %s: %w", site.Name, site.Overlay, withSources(err, fs, overlay, site.Overlay))
	}
	if err := confine(app, pl.namespace); err != nil {
		return nil, refused(err)
	}
	if err := hookRoom(app, pl); err != nil {
		return nil, refused(err)
	}
	if err := shield(app, pl); err != nil {
		return nil, refused(err)
	}
	if r.Volumes, err = bindVolumes(pl, app); err != nil {
		return nil, refused(err)
	}
	if err := waveClaims(app, r.Volumes); err != nil {
		return nil, refused(err)
	}
	if err := protect(p, pl.kinds, app); err != nil {
		return nil, refused(err)
	}
	if role == Passive {
		if err := stopWorkloads(app, pl.kinds); err != nil {
			return nil, fmt.Errorf("site %s: %w", site.Name, err)
		}
	} else if err := startWorkloads(app, pl.kinds); err != nil {
		return nil, fmt.Errorf("site %s: %w", site.Name, err)
	}
	h := <-hooksBuilt
	if stops := extraStops(app, pl.kinds); role == Passive && len(stops) > 0 {
		// The hooks were built for the core kinds alone; this app has more.
		withStops := *pl
		withStops.stops = stops
		h.objs, h.err = hooks(&withStops, role)
	}
	if h.err != nil {
		return nil, fmt.Errorf("site %s: %w", site.Name, h.err)
	}
	r.Hooks = h.objs
	check, err := rpoCheck(pl)
	if err != nil {
		return nil, fmt.Errorf("site %s: %w", site.Name, err)
	}
	r.Checks = []Object{check}
	if err := checkOutput(r, pl.namespace); err != nil {
		return nil, fmt.Errorf("site %s overlay %s: %w", site.Name, site.Overlay, err)
	}
	return r, nil
}

// YAML is the whole output: the app, then the volumes, then the hooks. The
// two parts are encoded side by side: YAML encoding is most of what is left
// after kustomize, and a generate has a core to spare.
func (r *Result) YAML() ([]byte, error) {
	type encoded struct {
		b   bytes.Buffer
		err error
	}
	ours := make(chan *encoded, 1)
	go func() {
		e := &encoded{}
		e.err = writeDocs(&e.b, r.ours())
		ours <- e
	}()
	app, err := r.App.AsYaml()
	tail := <-ours
	if err != nil {
		return nil, fmt.Errorf("encoding the app: %w", err)
	}
	if tail.err != nil {
		return nil, tail.err
	}
	var b bytes.Buffer
	b.Grow(len(app) + len("---\n") + tail.b.Len())
	b.Write(app)
	if len(app) > 0 && tail.b.Len() > 0 {
		b.WriteString("---\n")
	}
	b.Write(tail.b.Bytes())
	return b.Bytes(), nil
}

// ours is every object argocd-rbd-dr adds to the overlay's, in output order.
func (r *Result) ours() []Object {
	return append(append(append([]Object{}, r.Volumes...), r.Hooks...), r.Checks...)
}

// Warm starts kustomize's one-time set-up on another goroutine: its first
// build parses its built-in field specs (about a tenth of a generate), which
// overlaps this way with reading the policy, the settings and the app's
// kustomizations. It renders an empty kustomization in memory and keeps
// nothing; kustomize's own sync.Once makes Render wait for the parse if it
// is still running, never do it twice.
func Warm() {
	go func() {
		fs := filesys.MakeFsInMemory()
		if err := fs.WriteFile("/kustomization.yaml", []byte("resources: []\n")); err == nil {
			_, _ = krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/")
		}
	}()
}
