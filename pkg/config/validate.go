package config

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// maxNameLen leaves room in a 63-character object name for "-rbd-dr-<step>".
const maxNameLen = 40

var imageFeatures = map[string]bool{
	"layering": true, "exclusive-lock": true, "object-map": true,
	"fast-diff": true, "deep-flatten": true, "journaling": true,
}

type validator struct {
	file     string
	idx      index
	opts     Options
	problems Problems
}

func (v *validator) addf(field, format string, args ...any) {
	v.problems = append(v.problems, Problem{File: v.file, Line: v.idx.line(field), Field: field, Message: fmt.Sprintf(format, args...)})
}

// policy checks everything and fills in defaults.
func (v *validator) policy(p *Policy) {
	if p.APIVersion != APIVersion {
		v.addf("apiVersion", "is %q; set apiVersion: %s", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		v.addf("kind", "is %q; set kind: %s", p.Kind, Kind)
	}
	v.name(p)

	if len(p.Sites) < 2 {
		v.addf("sites", "lists %d site(s); mirroring needs at least two, each with a name", len(p.Sites))
	}
	seenSites := map[string]int{}
	for i := range p.Sites {
		v.site(i, &p.Sites[i], seenSites)
	}
	switch _, ok := p.Site(p.ActiveSite); {
	case p.ActiveSite == "":
		v.addf("activeSite", "is missing; set it to the name of the site that runs the app (%s)", strings.Join(p.SiteNames(), " or "))
	case !ok:
		v.addf("activeSite", "%s is not one of the sites (%s); fix the spelling or add the site under sites", quote(p.ActiveSite), strings.Join(p.SiteNames(), ", "))
	}

	if len(p.Volumes) == 0 {
		v.addf("volumes", "is empty; declare each mirrored image with pvc, pool, image and size")
	}
	seenPVC, seenImage := map[string]int{}, map[string]int{}
	for i := range p.Volumes {
		v.volume(i, &p.Volumes[i], seenPVC, seenImage)
	}
	v.unprotected(p, seenPVC)
	v.hooks(&p.Hooks)
	v.apps(p)
}

func (v *validator) apps(p *Policy) {
	a := &p.Apps
	if a.Namespace == "" {
		a.Namespace = p.Name
	}
	if errs := validation.IsDNS1123Label(a.Namespace); len(errs) > 0 {
		v.addf("apps.namespace", "%q is not a namespace name: %s", a.Namespace, errs[0])
	}
	if a.Prune == nil {
		a.Prune = ptr(false)
	}
	if a.SelfHeal == nil {
		a.SelfHeal = ptr(true)
	}
	r := &a.Retry
	if r.Limit == nil {
		r.Limit = ptr(int64(DefaultRetryLimit))
	}
	if *r.Limit < -1 {
		v.addf("apps.retry.limit", "%d is out of range; use -1 (forever), 0 (never) or a count", *r.Limit)
	}
	if r.Factor == nil {
		r.Factor = ptr(int64(2))
	}
	if *r.Factor < 1 {
		v.addf("apps.retry.factor", "%d is out of range; use 1 or more", *r.Factor)
	}
	for _, d := range []struct {
		field string
		value *string
		def   string
	}{{"apps.retry.backoff", &r.Backoff, "10s"}, {"apps.retry.maxDuration", &r.MaxDuration, "3m"}} {
		if *d.value == "" {
			*d.value = d.def
		}
		if _, err := time.ParseDuration(*d.value); err != nil {
			v.addf(d.field, "%q is not a duration; write it like 10s or 3m", *d.value)
		}
	}
}

func (v *validator) name(p *Policy) {
	field := "name"
	if p.Name == "" {
		p.Name = strings.ToLower(filepath.Base(v.opts.AppDir))
		if v.opts.AppDir == "" {
			p.Name = "app"
		}
		field = "name (defaults to the app folder's name)"
	}
	if errs := validation.IsDNS1123Label(p.Name); len(errs) > 0 || len(p.Name) > maxNameLen {
		v.addf(field, "%q cannot prefix Kubernetes object names (a DNS label of at most %d characters); set name: to one", p.Name, maxNameLen)
	}
}

func (v *validator) site(i int, s *Site, seen map[string]int) {
	at := fmt.Sprintf("sites[%d]", i)
	if s.Name == "" {
		v.addf(at+".name", "is missing; name every site (e.g. site-a)")
	} else if errs := validation.IsDNS1123Label(s.Name); len(errs) > 0 {
		v.addf(at+".name", "%s is not a DNS label (lower-case letters, digits and '-', at most 63): %s", quote(s.Name), errs[0])
	} else if j, dup := seen[s.Name]; dup {
		v.addf(at+".name", "%q is already sites[%d]; site names must be unique", s.Name, j)
	} else {
		seen[s.Name] = i
	}

	if s.Overlay == "" {
		s.Overlay = "overlays/" + s.Name
	}
	v.overlay(at+".overlay", s.Overlay)

}

// overlay checks that the folder stays in the repository, as far as can be
// told from the path; the render jail checks symlinks on disk.
func (v *validator) overlay(field, overlay string) {
	if path.IsAbs(overlay) || filepath.IsAbs(overlay) {
		v.addf(field, "%q is absolute; give the folder relative to the app folder", overlay)
		return
	}
	if v.opts.RepoRoot == "" || v.opts.AppDir == "" {
		if strings.HasPrefix(path.Clean(overlay), "..") {
			v.addf(field, "%q leaves the app folder, and the repository root is unknown", overlay)
		}
		return
	}
	target := filepath.Join(v.opts.AppDir, filepath.FromSlash(overlay))
	rel, err := filepath.Rel(v.opts.RepoRoot, target)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		v.addf(field, "%q leaves the repository; keep overlays inside it", overlay)
	}
}

func (v *validator) volume(i int, vol *Volume, seenPVC, seenImage map[string]int) {
	at := fmt.Sprintf("volumes[%d]", i)
	if vol.PVC == "" {
		v.addf(at+".pvc", "is missing; name the PersistentVolumeClaim that uses this image")
	} else if errs := validation.IsDNS1123Subdomain(vol.PVC); len(errs) > 0 {
		v.addf(at+".pvc", "%s is not a PVC name: %s", quote(vol.PVC), errs[0])
	} else if j, dup := seenPVC[vol.PVC]; dup {
		v.addf(at+".pvc", "%q is already volumes[%d].pvc; one image per PVC", vol.PVC, j)
	} else {
		seenPVC[vol.PVC] = i
	}
	for _, f := range []struct{ name, value string }{{"pool", vol.Pool}, {"image", vol.Image}} {
		switch {
		case f.value == "":
			v.addf(at+"."+f.name, "is missing; give the Ceph %s name", f.name)
		case !ValidCephName(f.value):
			v.addf(at+"."+f.name, "%s is not a valid Ceph %s name: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128", quote(f.value), f.name)
		}
	}
	if vol.Pool != "" && vol.Image != "" {
		if j, dup := seenImage[vol.Spec()]; dup {
			v.addf(at+".image", "%s is already volumes[%d]; each image can back one PVC only", vol.Spec(), j)
		} else {
			seenImage[vol.Spec()] = i
		}
	}
	if vol.Size == "" {
		v.addf(at+".size", "is missing; give the image's size as a Kubernetes quantity (e.g. 20Gi)")
	} else if q, err := resource.ParseQuantity(vol.Size); err != nil {
		v.addf(at+".size", "%q is not a Kubernetes quantity; write it like 20Gi or 500Mi", vol.Size)
	} else if q.Sign() <= 0 {
		v.addf(at+".size", "%q must be more than zero", vol.Size)
	} else if q.Cmp(*resource.NewQuantity(q.Value(), q.Format)) != 0 { // Value rounds up
		v.addf(at+".size", "%q is not a whole number of bytes (m means thousandths); write it like 20Gi or 500Mi", vol.Size)
	} else {
		vol.Quantity = q
	}
	if vol.ImageFeatures == "" {
		vol.ImageFeatures = DefaultImageFeatures
	}
	for _, feat := range strings.Split(vol.ImageFeatures, ",") {
		if !imageFeatures[feat] {
			v.addf(at+".imageFeatures", "%q is not an RBD image feature; use a comma-separated list of layering, exclusive-lock, object-map, fast-diff, deep-flatten, journaling", feat)
			break
		}
	}
	if vol.FSType == "" {
		vol.FSType = DefaultFSType
	}
	if vol.FSType != "ext4" && vol.FSType != "xfs" {
		v.addf(at+".fsType", "%q is not supported; use ext4 or xfs", vol.FSType)
	}
}

// unprotected checks the claims declared as deliberately not mirrored.
func (v *validator) unprotected(p *Policy, volumes map[string]int) {
	seen := map[string]int{}
	for i, u := range p.Unprotected {
		at := fmt.Sprintf("unprotected[%d]", i)
		if errs := validation.IsDNS1123Subdomain(u.PVC); len(errs) > 0 {
			v.addf(at+".pvc", "%s is not a PVC name: %s", quote(u.PVC), errs[0])
		} else if j, dup := volumes[u.PVC]; dup {
			v.addf(at+".pvc", "%q is volumes[%d].pvc: a claim is either mirrored or not; remove one", u.PVC, j)
		} else {
			v.unique(at+".pvc", "PVC", u.PVC, seen, i)
		}
		if strings.TrimSpace(u.Reason) == "" {
			v.addf(at+".reason", "is missing; say why losing this claim's data on a failover is fine (a person reading the file will ask)")
		}
	}
}

func (v *validator) hooks(h *Hooks) {
	if h.BackoffLimit == nil {
		h.BackoffLimit = ptr(int32(DefaultBackoffLimit))
	}
	if *h.BackoffLimit < 0 || *h.BackoffLimit > MaxBackoffLimit {
		v.addf("hooks.backoffLimit", "%d is out of range; use 0 to %d retries", *h.BackoffLimit, MaxBackoffLimit)
	}
	if h.ActiveDeadlineSeconds == nil {
		h.ActiveDeadlineSeconds = ptr(int64(DefaultDeadline))
	}
	if *h.ActiveDeadlineSeconds < MinDeadline {
		v.addf("hooks.activeDeadlineSeconds", "%d is too short; give a hook Job at least %d seconds", *h.ActiveDeadlineSeconds, MinDeadline)
	}
	h.StepTimeout = DefaultStepTimeout
	if h.Timeout != "" {
		d, err := time.ParseDuration(h.Timeout)
		switch {
		case err != nil:
			v.addf("hooks.timeout", "%q is not a duration; write it like 15m or 90s", h.Timeout)
		case d < MinStepTimeout:
			v.addf("hooks.timeout", "%s is too short; give a step at least %s", h.Timeout, MinStepTimeout)
		default:
			h.StepTimeout = d
		}
	}
	if deadline := time.Duration(*h.ActiveDeadlineSeconds) * time.Second; *h.ActiveDeadlineSeconds >= MinDeadline && h.StepTimeout >= deadline {
		v.addf("hooks.timeout", "%s is not shorter than hooks.activeDeadlineSeconds (%s): Kubernetes would kill the Job before the step reports", h.StepTimeout, deadline)
	}
	if h.Parallelism == 0 {
		h.Parallelism = DefaultParallelism
	}
	if h.Parallelism < 1 || h.Parallelism > MaxParallelism {
		v.addf("hooks.parallelism", "%d is out of range; use 1 to %d images at a time", h.Parallelism, MaxParallelism)
	}
}

func ptr[T any](v T) *T { return &v }

// ValidCephName says whether s is a Ceph name argocd-rbd-dr accepts: rbd's
// rule, the one the hook command line and the rbd calls check.
func ValidCephName(s string) bool { return rbd.ValidName(s) }
