// Package plan says what each site's next sync will do, read back from the
// rendering itself: the hook steps in wave order, the app's state after
// them, and what a person should know before committing the change.
package plan

import (
	"cmp"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/render"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// Plan is the next sync of every site.
type Plan struct {
	App          string `json:"app"`
	File         string `json:"file"`
	ActiveSite   string `json:"activeSite"`
	ForcePromote bool   `json:"forcePromote"`
	Change       string `json:"change"`
	// Base says what the change is against: the last commit, which is what
	// the clusters run; "" when there is none and the file is planned as it is.
	Base     string   `json:"base,omitempty"`
	Sites    []Site   `json:"sites"`
	Warnings []string `json:"warnings"`
	// changes is whether the next sync changes a role or forcePromote.
	changes bool
}

// Moves says whether the next sync changes anything: a role, or
// forcePromote.
func (pl *Plan) Moves() bool { return pl.changes }

// Site is one site's next sync.
type Site struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// AppWave is the site's sync wave in the app-of-apps.
	AppWave int    `json:"appWave"`
	Cluster string `json:"cluster"`
	Steps   []Step `json:"steps"`
	// Then is what the app's own resources do after the hooks.
	Then string `json:"then"`
}

// Step is one PreSync hook.
type Step struct {
	Wave      int      `json:"wave"`
	Step      string   `json:"step"`
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Targets   []string `json:"targets"`
	Force     bool     `json:"force,omitempty"`
}

// Label is the step as a person reads it in a table.
func (st Step) Label() string {
	if st.Force {
		return st.Step + " --force"
	}
	return st.Step
}

// Options place the app and say which change to plan.
type Options struct {
	RepoRoot, AppDir, Namespace string
	// Settings are the platform's (clusters, images, Ceph users).
	Settings *config.Settings
	// To is the site to make active; "" plans the file as it is.
	To string
	// Force plans a forced failover (forcePromote: true).
	Force bool
	// Running is the policy the clusters run (rbd-dr.yaml in the last
	// commit), which the change is planned against; nil plans against the
	// file as it is. Base names it for the person.
	Running *config.Policy
	Base    string
}

// Make plans the next sync of every site. The caller's policy is left as it
// is: the change is planned on a copy.
func Make(policy *config.Policy, o Options) (*Plan, error) {
	p := *policy
	running := policy
	if o.Running != nil {
		running = o.Running
	}
	from, wasForced := running.ActiveSite, running.ForcePromote
	if o.To != "" {
		if _, ok := p.Site(o.To); !ok {
			return nil, fmt.Errorf("--to %q is not one of the sites (%s)", o.To, strings.Join(p.SiteNames(), ", "))
		}
		p.ActiveSite, p.ForcePromote = o.To, o.Force
	}
	pl := &Plan{App: p.Name, File: p.File, ActiveSite: p.ActiveSite, ForcePromote: p.ForcePromote, Base: o.Base}
	switch {
	case from != p.ActiveSite && p.ForcePromote:
		pl.Change = fmt.Sprintf("forced failover from %s to %s", from, p.ActiveSite)
	case from != p.ActiveSite:
		pl.Change = fmt.Sprintf("planned relocation from %s to %s", from, p.ActiveSite)
	case wasForced && !p.ForcePromote:
		pl.Change = fmt.Sprintf("forcePromote back to false: %s stays active, and the passive site no longer runs resync", p.ActiveSite)
	case !wasForced && p.ForcePromote:
		pl.Change = fmt.Sprintf("forcePromote set: %s stays active, and the passive site's demote and resync act as after a forced failover", p.ActiveSite)
	default:
		pl.Change = fmt.Sprintf("none: %s stays active (every hook checks and finds nothing to do)", p.ActiveSite)
	}
	pl.changes = from != p.ActiveSite || wasForced != p.ForcePromote
	for _, s := range p.Sites {
		res, err := render.Render(&p, render.Options{RepoRoot: o.RepoRoot, AppDir: o.AppDir, Site: s.Name, Namespace: o.Namespace, Settings: o.Settings})
		if err != nil {
			return nil, err
		}
		hookSteps, err := steps(res.Hooks)
		if err != nil {
			return nil, err
		}
		cluster, _ := o.Settings.Site(s.Name) // Render checked every site
		site := Site{Name: s.Name, Role: string(res.Role), AppWave: render.AppWave(&p, s.Name), Cluster: cluster.Cluster, Steps: hookSteps}
		site.Then = then(res, o.Settings.Workloads())
		pl.Sites = append(pl.Sites, site)
	}
	pl.Warnings = warnings(&p, o)
	return pl, nil
}

// then says what the app's workloads do after the hooks, read from the
// rendering with pkg/workload: on the passive site each one it stops, as
// stopped; on the active site, the same ones running.
func then(res *render.Result, kinds workload.Catalog) string {
	var stopped, running []string
	for _, r := range res.App.Resources() {
		k, ok := kinds.Lookup(r.GetGvk().Group, r.GetKind())
		if !ok || !k.CanStop() {
			continue
		}
		stopped = append(stopped, k.StopReport(r.GetName()))
		running = append(running, k.Name+" "+r.GetName())
	}
	switch {
	case len(running) == 0:
		return "no workload to stop or start"
	case res.Role == render.Passive:
		return strings.Join(stopped, ", ")
	default:
		return "as git has them: " + strings.Join(running, ", ")
	}
}

// steps reads the hooks back: Jobs with their command line, parsed by the
// hook contract itself, and the hooks' RBAC (quiesce's and demote's) as one step.
func steps(hooks []render.Object) ([]Step, error) {
	var out []Step
	rbac := -1 // index of the RBAC step in out
	for _, h := range hooks {
		u := unstructured.Unstructured{Object: h}
		wave, _ := strconv.Atoi(u.GetAnnotations()[render.WaveAnnotation])
		step := u.GetLabels()[render.StepLabel]
		if u.GetKind() != "Job" {
			if rbac < 0 {
				out = append(out, Step{Wave: wave, Step: "hook access", Kind: "RBAC", Namespace: u.GetNamespace()})
				rbac = len(out) - 1
			}
			out[rbac].Targets = append(out[rbac].Targets, u.GetKind()+"/"+u.GetName())
			continue
		}
		var args []string
		containers, _, _ := unstructured.NestedSlice(h, "spec", "template", "spec", "containers")
		if c, ok := first(containers); ok {
			args, _, _ = unstructured.NestedStringSlice(c, "args")
		}
		req, err := hookcmd.Parse(step, args)
		if err != nil {
			return nil, fmt.Errorf("reading back Job %s: %w", u.GetName(), err)
		}
		out = append(out, Step{Wave: wave, Step: step, Kind: "Job", Namespace: u.GetNamespace(), Targets: req.Targets, Force: req.Force})
	}
	slices.SortStableFunc(out, func(a, b Step) int { return a.Wave - b.Wave })
	return out, nil
}

func first(containers []any) (map[string]any, bool) {
	if len(containers) == 0 {
		return nil, false
	}
	c, ok := containers[0].(map[string]any)
	return c, ok
}

// warnings are what a person should know before committing the change.
func warnings(p *config.Policy, o Options) []string {
	var w []string
	if p.ForcePromote {
		w = append(w, fmt.Sprintf("forcePromote is true: %s promotes with --force if the other site has not demoted, losing the writes after the last mirror snapshot; set it back to false once the lost site is back and resynced", p.ActiveSite))
	}
	return append(w, sharedImages(p, o)...)
}

// sharedImages finds images this app declares that another app folder
// beside it (below the app folder's parent) declares too: both would fail
// them over. Claims of one name in one namespace are found the same way:
// both apps would own, stop and move one claim.
func sharedImages(p *config.Policy, o Options) []string {
	namespace := o.Namespace
	if namespace == "" {
		namespace = p.Apps.Namespace
	}
	// An image is pool/image in the RADOS namespace the settings give the
	// app's namespace: apps of two teams may name the same pool and image,
	// each in its own RADOS namespace.
	target := func(v config.Volume, ns string) string {
		v.Namespace = ""
		if o.Settings != nil {
			if t, err := o.Settings.Tenant(ns); err == nil {
				v.Namespace = t.RadosNamespace
			}
		}
		return v.Spec()
	}
	mine := map[string]bool{}
	claims := map[string]bool{}
	for _, v := range p.Volumes {
		mine[target(v, namespace)] = true
		claims[v.PVC] = true
	}
	self := filepath.Join(o.AppDir, config.FileName)
	var w []string
	unreadable := 0
	_ = filepath.WalkDir(filepath.Dir(o.AppDir), func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir() || d.Name() != config.FileName || path == self:
			return nil
		}
		other, err := config.Load(filepath.Dir(path), o.RepoRoot)
		if err != nil {
			unreadable++
			return nil
		}
		// The other app's images are in the RADOS namespace of its own
		// namespace when the settings know that one; else its Application
		// may deploy it anywhere, this app's namespace included: compare as
		// if there, so a shared image is never missed.
		otherNS := cmp.Or(other.Apps.Namespace, namespace)
		if o.Settings != nil {
			if _, err := o.Settings.Tenant(otherNS); err != nil {
				otherNS = namespace
			}
		}
		for _, v := range other.Volumes {
			if spec := target(v, otherNS); mine[spec] {
				w = append(w, fmt.Sprintf("%s is also declared in %s: two apps would fail over the same image", spec, other.File))
			}
			if claims[v.PVC] && other.Apps.Namespace == namespace {
				w = append(w, fmt.Sprintf("claim %s/%s is also declared in %s, in the same namespace: two apps would own, stop and fail over one claim", namespace, v.PVC, other.File))
			}
		}
		return nil
	})
	if unreadable > 0 {
		w = append(w, fmt.Sprintf("%d other %s file(s) beside this app could not be read, so they were not checked for shared images; run argocd-rbd-dr validate on them", unreadable, config.FileName))
	}
	return w
}
