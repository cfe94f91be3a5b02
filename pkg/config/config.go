// Package config loads rbd-dr.yaml, the FailoverPolicy of one app folder:
// its types, defaults, strict decoding and validation with file:line errors.
package config

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// FileName is the name of the policy file; its presence is what Argo CD's
// discovery looks for.
const FileName = "rbd-dr.yaml"

// APIVersion and Kind identify the policy document.
const (
	APIVersion = "rbd-dr.io/v1alpha1"
	Kind       = "FailoverPolicy"
)

// Defaults filled in where the file is silent.
const (
	DefaultCSIDriver     = "rook-ceph.rbd.csi.ceph.com"
	DefaultImageFeatures = "layering"
	DefaultFSType        = "ext4"
	DefaultBackoffLimit  = 2
	DefaultDeadline      = 1800
	DefaultStepTimeout   = 15 * time.Minute
	// DefaultParallelism: on the two-site lab a relocation takes about as
	// long as one image per round (20 images: 4.7-4.9 s 20-wide, 11.0-11.6 s
	// 8-wide, on 2 cores), so an app's images move in one round.
	DefaultParallelism = 20
	DefaultRetryLimit  = 10
)

// Bounds of the hook settings a team may write (hooks.*).
const (
	MaxBackoffLimit = 10
	// MinDeadline (seconds) leaves a hook Job time to start and report.
	MinDeadline    = 60
	MinStepTimeout = 10 * time.Second
	MaxParallelism = 32
)

// MinRPO is the shortest recovery point a namespace can be promised: the
// shortest interval of a mirror snapshot schedule.
const MinRPO = time.Minute

// Policy is the whole rbd-dr.yaml.
type Policy struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	// Name prefixes the hook objects; defaults to the app folder's name.
	Name         string   `yaml:"name"`
	ActiveSite   string   `yaml:"activeSite"`
	ForcePromote bool     `yaml:"forcePromote"`
	Sites        []Site   `yaml:"sites"`
	Volumes      []Volume `yaml:"volumes"`
	// Unprotected are claims the app mounts that are deliberately not
	// mirrored: a failover leaves their data behind.
	Unprotected []Unprotected `yaml:"unprotected"`
	Hooks       Hooks         `yaml:"hooks"`
	Apps        Apps          `yaml:"apps"`

	// File is where the policy was read from, for messages.
	File string `yaml:"-"`
	// lines places the fields, for problems found after loading.
	lines index
}

// Problem places a problem found after loading (against the settings, in
// the rendered objects) on the field's line of the file.
func (p *Policy) Problem(field, format string, args ...any) Problem {
	return Problem{File: p.File, Line: p.lines.line(field), Field: field, Message: fmt.Sprintf(format, args...)}
}

// Site is one of the app's sites, by the name the platform's settings give
// it; where it is and how its Ceph is reached are the settings' to say.
type Site struct {
	Name string `yaml:"name"`
	// Overlay is the kustomize folder of this site, relative to the app folder.
	Overlay string `yaml:"overlay"`
}

// Volume is one mirrored RBD image and the PVC that uses it.
type Volume struct {
	PVC           string `yaml:"pvc"`
	Pool          string `yaml:"pool"`
	Image         string `yaml:"image"`
	Size          string `yaml:"size"`
	ImageFeatures string `yaml:"imageFeatures"`
	FSType        string `yaml:"fsType"`

	// Quantity is Size parsed.
	Quantity resource.Quantity `yaml:"-"`
	// Namespace is the RADOS namespace of the image, which the platform's
	// settings give the app's namespace (Settings.Grant), never the app.
	Namespace string `yaml:"-"`
}

// Spec is the pool/image (or pool/namespace/image) form the rbd CLI and the
// hook commands take.
func (v Volume) Spec() string { return v.Target().String() }

// Target is the image the volume names.
func (v Volume) Target() rbd.Image {
	return rbd.Image{Pool: v.Pool, Namespace: v.Namespace, Name: v.Image}
}

// Unprotected is a claim the app mounts that is not mirrored on purpose (a
// cache that is rebuilt on start): declared, so it is never left out by
// accident.
type Unprotected struct {
	PVC string `yaml:"pvc"`
	// Reason says why losing its data on a failover is fine.
	Reason string `yaml:"reason"`
}

// Hooks tunes the timing of the PreSync hook Jobs; what they run is the
// platform's settings' to say.
type Hooks struct {
	BackoffLimit          *int32 `yaml:"backoffLimit"`
	ActiveDeadlineSeconds *int64 `yaml:"activeDeadlineSeconds"`
	// Timeout bounds how long one step waits (for a peer's demotion, for pods to stop).
	Timeout     string `yaml:"timeout"`
	Parallelism int    `yaml:"parallelism"`

	// StepTimeout is Timeout parsed.
	StepTimeout time.Duration `yaml:"-"`
}

// Apps tunes the app-of-apps: the Application per site that a parent
// Application renders with MODE=apps.
type Apps struct {
	// Namespace is the app's namespace on every site (the destination).
	Namespace string `yaml:"namespace"`
	// Prune lets automated sync delete what left git.
	Prune *bool `yaml:"prune"`
	// SelfHeal lets automated sync undo changes made outside git.
	SelfHeal *bool `yaml:"selfHeal"`
	Retry    Retry `yaml:"retry"`
}

// Retry is how Argo CD retries a failed sync: a promote fails until the
// passive site's demotion has replayed, and the retry picks it up.
type Retry struct {
	Limit       *int64 `yaml:"limit"`
	Backoff     string `yaml:"backoff"`
	Factor      *int64 `yaml:"factor"`
	MaxDuration string `yaml:"maxDuration"`
}

// movedToSettings says where the fields that left rbd-dr.yaml went: they
// decide what runs with Ceph credentials and where, which is the platform
// team's to say, not an app team's.
var movedToSettings = map[string]string{
	"sites[].cluster":         "sites[].cluster",
	"sites[].cephNamespace":   "namespaces[] (the Ceph Jobs run in the app's namespace with its own Ceph user)",
	"sites[].clusterID":       "sites[].clusterID",
	"sites[].csiDriver":       "sites[].csiDriver",
	"sites[].nodeStageSecret": "sites[].nodeStageSecret",
	"hooks.image":             "images.hook",
	"hooks.cephImage":         "images.ceph",
	"apps.project":            "namespaces[].project",
}

func movedField(path string) string {
	if to, ok := movedToSettings[path]; ok {
		return "the platform team sets it in argocd-rbd-dr's settings file (" + to + "); remove it from " + FileName
	}
	return ""
}

// Site returns the named site.
func (p *Policy) Site(name string) (Site, bool) {
	for _, s := range p.Sites {
		if s.Name == name {
			return s, true
		}
	}
	return Site{}, false
}

// SiteNames lists the sites in file order.
func (p *Policy) SiteNames() []string {
	names := make([]string, len(p.Sites))
	for i, s := range p.Sites {
		names[i] = s.Name
	}
	return names
}

// IsActive says whether site is the one activeSite makes active: the one
// place that decides a site's role (render, the app-of-apps waves, the
// parameters announcement and plan all ask here).
func (p *Policy) IsActive(site string) bool { return site == p.ActiveSite }
