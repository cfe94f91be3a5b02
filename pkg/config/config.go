// Package config loads rbd-dr.yaml, the FailoverPolicy of one app folder:
// its types, defaults, strict decoding and validation with file:line errors.
package config

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
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
	DefaultCephNamespace   = "rook-ceph"
	DefaultCSIDriver       = "rook-ceph.rbd.csi.ceph.com"
	DefaultNodeStageSecret = "rook-csi-rbd-node"
	DefaultImageFeatures   = "layering"
	DefaultFSType          = "ext4"
	DefaultHookImage       = "ghcr.io/rbd-dr/argocd-rbd-dr:v0.1.0"
	DefaultCephImage       = "docker.io/rook/ceph:v1.14.12"
	DefaultBackoffLimit    = 2
	DefaultDeadline        = 1800
	DefaultStepTimeout     = 15 * time.Minute
	DefaultParallelism     = 4
	DefaultRetryLimit      = 10
)

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
	Hooks        Hooks    `yaml:"hooks"`
	Apps         Apps     `yaml:"apps"`

	// File is where the policy was read from, for messages.
	File string `yaml:"-"`
}

// Site is one Kubernetes cluster with its Rook-Ceph.
type Site struct {
	Name string `yaml:"name"`
	// Overlay is the kustomize folder of this site, relative to the app folder.
	Overlay string `yaml:"overlay"`
	// Cluster is the API server URL, used by the app-of-apps.
	Cluster string `yaml:"cluster"`
	// CephNamespace is where Rook runs the CephCluster; the Ceph hook Jobs run there.
	CephNamespace string `yaml:"cephNamespace"`
	// ClusterID is ceph-csi's clusterID; Rook uses the CephCluster's namespace.
	ClusterID string `yaml:"clusterID"`
	// CSIDriver is the ceph-csi RBD driver name.
	CSIDriver string `yaml:"csiDriver"`
	// NodeStageSecret is the Secret in CephNamespace ceph-csi maps images with.
	NodeStageSecret string `yaml:"nodeStageSecret"`
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
}

// Spec is the pool/image form the rbd CLI and the hook commands take.
func (v Volume) Spec() string { return v.Pool + "/" + v.Image }

// Hooks tunes the PreSync hook Jobs.
type Hooks struct {
	// Image is argocd-rbd-dr's own image: it runs the quiesce step and
	// delivers the binary to the Ceph Jobs.
	Image string `yaml:"image"`
	// CephImage is Rook's image (it carries rbd and toolbox.sh).
	CephImage             string `yaml:"cephImage"`
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
	// Project is the Argo CD project of the Applications.
	Project string `yaml:"project"`
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
