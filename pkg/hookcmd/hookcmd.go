// Package hookcmd is the command-line contract between the hook Jobs the
// renderer writes and `argocd-rbd-dr hook <step>` that runs in them: the
// steps, their flags and arguments, written and read by the same code.
package hookcmd

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// Step is one hook step.
type Step string

// The steps, by the role of the site that runs them (the role table of docs/architecture.md).
const (
	// Quiesce (passive) scales the workloads that use the PVCs to 0 and waits
	// until no pod mounts them. Arguments: PVC names.
	Quiesce Step = "quiesce"
	// Demote (passive) demotes the primary images. Arguments: pool/image.
	Demote Step = "demote"
	// Resync (passive, only after a forced failover) resyncs split-brain
	// images from the new primary. Arguments: pool/image.
	Resync Step = "resync"
	// Prepare (active) checks mirror health and resyncs a local copy in error
	// from the still-healthy primary peer. Arguments: pool/image.
	Prepare Step = "prepare"
	// Promote (active) promotes once the peer's demotion has replayed.
	// Arguments: pool/image.
	Promote Step = "promote"
	// RPOCheck (both sites, from a CronJob rather than a hook) fails when a
	// copy is older than 3x the promised recovery point, was never made,
	// or mirroring is broken. Arguments: pool/image.
	RPOCheck Step = "rpo-check"
)

// RendererVersionEnv names the variable through which the renderer tells
// a hook Job's binary the renderer's own version: the two must be one
// release, or flags one of them knows the other does not are misread.
const RendererVersionEnv = "RBD_DR_RENDERER_VERSION"

// CheckRenderer refuses a hook binary of another version than the renderer
// that wrote its Job. rendered is "" where no renderer wrote it (a person or
// the lab running the step): nothing to compare.
func CheckRenderer(rendered, mine string) error {
	if rendered == "" || rendered == mine {
		return nil
	}
	return fmt.Errorf("this hook binary is argocd-rbd-dr %s, but its Job was rendered by argocd-rbd-dr %s: the sidecar and the settings' images.hook must be one release; "+
		"set images.hook to the digest of the %s image (or run the sidecar of %s), and sync again; nothing was done", mine, rendered, rendered, mine)
}

// Steps lists every step.
var Steps = []Step{Quiesce, Demote, Resync, Prepare, Promote, RPOCheck}

// checksRPO says whether the step takes --rpo: prepare and promote check
// the schedule with it, rpo-check the copies.
func (s Step) checksRPO() bool { return s == Prepare || s == Promote || s == RPOCheck }

// Ceph says whether the step runs rbd against Ceph rather than talking to
// the Kubernetes API; both kinds of Job run in the app's namespace.
func (s Step) Ceph() bool { return s != Quiesce }

// ReadsPeer says whether the step can read the peer cluster's snapshots:
// demote, for the peer's copy; promote, for the peer's role when its status
// record still claims primary.
func (s Step) ReadsPeer() bool { return s == Demote || s == Promote }

// Request is one invocation of a step.
type Request struct {
	Step Step
	// Targets are pool/image specs, or PVC names for quiesce.
	Targets []string
	// Namespace is where quiesce finds the PVCs and workloads, and where
	// demote looks for pods that still mount its images' Claims.
	Namespace string
	// Claims are the PVCs of demote's images, in the targets' order: with
	// them (and Namespace) demote waits until no pod mounts an image's claim
	// before demoting it, whatever Argo CD's hook bookkeeping did with
	// quiesce. Without them it does not look (a person, the lab).
	Claims      []string
	Timeout     time.Duration
	Parallelism int
	// Force lets promote use --force: only when rbd-dr.yaml says forcePromote.
	Force bool
	// ForcePromoted tells resync and demote that git declared a forced
	// failover: without it resync must not act (a planned demotion can look
	// split-brain), and demote, unless the peer's own snapshots say so, does
	// not take the peer's lagging status claim to be primary as one.
	ForcePromoted bool
	// Pools are where the app's namespace may move images (the platform's
	// settings): pools, or pool/namespace for a RADOS namespace of a pool,
	// which then reaches that namespace only. A Ceph step refuses any target
	// outside them before acting.
	Pools []string
	// Ceph says how to reach the cluster and as whom. The Jobs give the
	// namespace's Ceph user, its key file and the monitors; empty fields are
	// left to rbd's defaults (for people and the lab).
	Ceph rbd.Conn
	// RPO is the recovery point promised to the app's namespace (the
	// settings' rpo): prepare and promote refuse an image no schedule covers
	// that often; rpo-check judges the copies' age by it.
	RPO time.Duration
	// Peer says how demote and promote read the peer cluster's snapshots, as a
	// read-only user made there (mon 'profile rbd' osd
	// 'profile rbd-read-only pool=<pool>'), never with the peer's
	// rbd-mirror key. Empty: demote judges the peer's copy from the local
	// signals only.
	Peer rbd.Conn
	// Kinds are the workload kinds the settings teach, which quiesce stops
	// beside the built-in ones (pkg/workload).
	Kinds []workload.Kind
}

const (
	flagNamespace     = "namespace"
	flagTimeout       = "timeout"
	flagParallelism   = "parallelism"
	flagForce         = "force"
	flagForcePromoted = "force-promoted"
	flagPools         = "pools"
	flagRPO           = "rpo"
	flagCephID        = "ceph-id"
	flagCephKeyFile   = "ceph-keyfile"
	flagCephMonHost   = "ceph-mon-host"
	flagPeerConf      = "peer-ceph-conf"
	flagPeerID        = "peer-ceph-id"
	flagPeerKeyring   = "peer-ceph-keyring"
	flagPeerKeyFile   = "peer-ceph-keyfile"
	flagPeerMonHost   = "peer-ceph-mon-host"
	flagWorkloadKind  = "workload-kind"
	flagClaims        = "claims"
)

// Args is the command line of the request after `hook <step>`.
func (r Request) Args() []string {
	var args []string
	if r.Step == Quiesce || len(r.Claims) > 0 {
		args = append(args, "--"+flagNamespace+"="+r.Namespace)
	}
	if r.Step == Quiesce {
		for _, k := range r.Kinds {
			args = append(args, "--"+flagWorkloadKind+"="+k.Flag())
		}
	}
	if len(r.Claims) > 0 {
		args = append(args, "--"+flagClaims+"="+strings.Join(r.Claims, ","))
	}
	args = append(args, "--"+flagTimeout+"="+r.Timeout.String(), fmt.Sprintf("--%s=%d", flagParallelism, r.Parallelism))
	if r.Force {
		args = append(args, "--"+flagForce)
	}
	if r.ForcePromoted {
		args = append(args, "--"+flagForcePromoted)
	}
	if r.RPO > 0 {
		args = append(args, "--"+flagRPO+"="+r.RPO.String())
	}
	if r.Step.Ceph() {
		args = append(args, "--"+flagPools+"="+strings.Join(r.Pools, ","))
		for _, f := range []struct{ flag, value string }{{flagCephID, r.Ceph.ID}, {flagCephKeyFile, r.Ceph.KeyFile}, {flagCephMonHost, r.Ceph.MonHost}} {
			if f.value != "" {
				args = append(args, "--"+f.flag+"="+f.value)
			}
		}
	}
	for _, f := range []struct{ flag, value string }{
		{flagPeerConf, r.Peer.Conf}, {flagPeerID, r.Peer.ID}, {flagPeerKeyring, r.Peer.Keyring}, {flagPeerKeyFile, r.Peer.KeyFile}, {flagPeerMonHost, r.Peer.MonHost},
	} {
		if f.value != "" {
			args = append(args, "--"+f.flag+"="+f.value)
		}
	}
	return append(args, r.Targets...)
}

// FlagSet is the step's flags, bound to r, for parsing and for help.
func FlagSet(step Step, r *Request) *pflag.FlagSet {
	fs := pflag.NewFlagSet("hook "+string(step), pflag.ContinueOnError)
	fs.DurationVar(&r.Timeout, flagTimeout, config.DefaultStepTimeout, "how long the step may wait before it fails")
	fs.IntVar(&r.Parallelism, flagParallelism, config.DefaultParallelism, "how many images or PVCs to work on at once")
	if step.Ceph() {
		fs.StringVar(&r.Ceph.Conf, "ceph-conf", "", "ceph.conf of the cluster (default: rbd's, /etc/ceph/ceph.conf)")
		fs.StringVar(&r.Ceph.Cluster, "ceph-cluster", "", "cluster name (default: rbd's)")
		fs.StringVar(&r.Ceph.ID, flagCephID, "", "Ceph user without client. (default: rbd's, admin)")
		fs.StringVar(&r.Ceph.Keyring, "ceph-keyring", "", "keyring of that user (default: rbd's)")
		fs.StringVar(&r.Ceph.KeyFile, flagCephKeyFile, "", "file holding only that user's key (as a Secret mounts it)")
		fs.StringVar(&r.Ceph.MonHost, flagCephMonHost, "", "the monitors, host:port[,host:port...] (default: from ceph.conf)")
		fs.StringSliceVar(&r.Pools, flagPools, nil, "where this app may move images (required): pools, or pool/namespace for a RADOS namespace; any other target is refused before anything is done")
	}
	if step.checksRPO() {
		fs.DurationVar(&r.RPO, flagRPO, 0, "the recovery point promised to the app's namespace (the settings' rpo, e.g. 5m): prepare and promote refuse an image that no mirror snapshot schedule covers that often (0: not checked); rpo-check (required) fails when a copy is more than 3x older")
	}
	if step.ReadsPeer() {
		fs.StringVar(&r.Peer.Conf, flagPeerConf, "", "ceph.conf of the peer cluster: read the peer's snapshots, the direct sign of its copy and its role")
		fs.StringVar(&r.Peer.ID, flagPeerID, "", "read-only Ceph user on the peer, without client. (mon 'profile rbd' osd 'profile rbd-read-only pool=<pool>')")
		fs.StringVar(&r.Peer.Keyring, flagPeerKeyring, "", "keyring of that peer user")
		fs.StringVar(&r.Peer.KeyFile, flagPeerKeyFile, "", "file holding only that peer user's key (as a Secret mounts it)")
		fs.StringVar(&r.Peer.MonHost, flagPeerMonHost, "", "the peer's monitors, host:port[,host:port...]")
	}
	switch step {
	case Quiesce:
		fs.StringVar(&r.Namespace, flagNamespace, "", "the app's namespace (required)")
		fs.Var((*kindsValue)(&r.Kinds), flagWorkloadKind, "a kind the settings teach, which quiesce stops too: GROUP/VERSION/RESOURCE/KIND:POD.SPEC.PATH:STOP.PATH=0|true (repeatable)")
	case Promote:
		fs.BoolVar(&r.Force, flagForce, false, "allow rbd mirror image promote --force (only when rbd-dr.yaml says forcePromote: true)")
	case Demote:
		fs.BoolVar(&r.ForcePromoted, flagForcePromoted, false, "rbd-dr.yaml says forcePromote: true: without the peer's snapshots, only then is the peer's status claim to be primary taken as a forced failover")
		fs.StringVar(&r.Namespace, flagNamespace, "", "the app's namespace, where --claims are (with --claims)")
		fs.StringSliceVar(&r.Claims, flagClaims, nil, "the PVCs of the images, in their order: no image is demoted while a pod in --namespace mounts its claim (needs the in-cluster ServiceAccount the renderer creates; unset: pods are not checked)")
	case Resync:
		fs.BoolVar(&r.ForcePromoted, flagForcePromoted, false, "rbd-dr.yaml says forcePromote: true (required: resync acts only after a forced failover)")
	}
	return fs
}

// Parse reads `hook <step> ARGS...` back into a request and validates it.
func Parse(step string, args []string) (Request, error) {
	s := Step(step)
	if !slices.Contains(Steps, s) {
		return Request{}, fmt.Errorf("unknown hook step %q; the steps are %s", step, joinSteps())
	}
	r := Request{Step: s}
	fs := FlagSet(s, &r)
	if err := fs.Parse(args); err != nil {
		return Request{}, fmt.Errorf("hook %s: %w", step, err)
	}
	r.Targets = fs.Args()
	return r, r.Validate()
}

// Validate checks a request the way the hook will rely on it: every name that
// reaches rbd or the API is checked here first.
func (r Request) Validate() error {
	if len(r.Targets) == 0 {
		what := "pool/image"
		if r.Step == Quiesce {
			what = "PVC name"
		}
		return fmt.Errorf("hook %s: give at least one %s", r.Step, what)
	}
	if r.Timeout <= 0 {
		return fmt.Errorf("hook %s: --timeout must be positive", r.Step)
	}
	if r.Parallelism < 1 {
		return fmt.Errorf("hook %s: --parallelism must be at least 1", r.Step)
	}
	if r.Step == Resync && !r.ForcePromoted {
		return fmt.Errorf("hook resync: refusing to run without --force-promoted: a resync discards the local image and is only safe after a forced failover")
	}
	if r.Force && r.Step != Promote {
		return fmt.Errorf("hook %s: --force is only for promote", r.Step)
	}
	if r.ForcePromoted && r.Step != Demote && r.Step != Resync {
		return fmt.Errorf("hook %s: --%s is only for demote and resync", r.Step, flagForcePromoted)
	}
	if r.RPO != 0 && !r.Step.checksRPO() {
		return fmt.Errorf("hook %s: --%s is only for prepare, promote and rpo-check", r.Step, flagRPO)
	}
	if r.RPO < 0 || r.Step == RPOCheck && r.RPO < config.MinRPO {
		return fmt.Errorf("hook %s: --%s must be at least %s, the shortest interval of a mirror snapshot schedule", r.Step, flagRPO, rbd.FormatInterval(config.MinRPO))
	}
	if r.Peer != (rbd.Conn{}) && !r.Step.ReadsPeer() {
		return fmt.Errorf("hook %s: only demote and promote read the peer cluster", r.Step)
	}
	if r.Peer != (rbd.Conn{}) && r.Peer.Conf == "" && r.Peer.MonHost == "" {
		return fmt.Errorf("hook %s: the peer's user and key need --%s or --%s, where the peer cluster is", r.Step, flagPeerConf, flagPeerMonHost)
	}
	if r.Step == Quiesce {
		return r.validClaims(r.Targets)
	}
	if len(r.Claims) > 0 || r.Namespace != "" {
		if len(r.Claims) != len(r.Targets) {
			return fmt.Errorf("hook %s: --%s gives %d PVCs for %d images: give one per image, in the images' order, with --%s", r.Step, flagClaims, len(r.Claims), len(r.Targets), flagNamespace)
		}
		if err := r.validClaims(r.Claims); err != nil {
			return err
		}
	}
	images, err := r.Images()
	if err != nil {
		return err
	}
	if len(r.Pools) == 0 {
		return fmt.Errorf("hook %s: give --%s, the pools this app may move", r.Step, flagPools)
	}
	for _, img := range images {
		if !slices.Contains(r.Pools, img.Place()) {
			where := "pool " + img.Pool
			if img.Namespace != "" {
				where = "RADOS namespace " + img.Place()
			}
			return fmt.Errorf("hook %s: %s is in %s, which this app may not move (--%s=%s); nothing was done", r.Step, img, where, flagPools, strings.Join(r.Pools, ","))
		}
	}
	return nil
}

// validClaims checks the namespace and the PVC names that reach the API.
func (r Request) validClaims(pvcs []string) error {
	if errs := validation.IsDNS1123Label(r.Namespace); len(errs) > 0 {
		return fmt.Errorf("hook %s: --%s %q is not a namespace name", r.Step, flagNamespace, r.Namespace)
	}
	for _, pvc := range pvcs {
		if errs := validation.IsDNS1123Subdomain(pvc); len(errs) > 0 {
			return fmt.Errorf("hook %s: %q is not a PVC name", r.Step, pvc)
		}
	}
	return nil
}

// Images reads the targets of a Ceph step as images.
func (r Request) Images() ([]rbd.Image, error) {
	images := make([]rbd.Image, len(r.Targets))
	for i, spec := range r.Targets {
		img, err := rbd.ParseImage(spec)
		if err != nil {
			return nil, fmt.Errorf("hook %s: %w", r.Step, err)
		}
		images[i] = img
	}
	return images, nil
}

func joinSteps() string {
	names := make([]string, len(Steps))
	for i, s := range Steps {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// kindsValue reads --workload-kind, one kind per use.
type kindsValue []workload.Kind

func (v *kindsValue) Set(s string) error {
	k, err := workload.ParseFlag(s)
	if err != nil {
		return err
	}
	*v = append(*v, k)
	return nil
}

func (v *kindsValue) String() string {
	flags := make([]string, len(*v))
	for i, k := range *v {
		flags[i] = k.Flag()
	}
	return strings.Join(flags, ",")
}

func (v *kindsValue) Type() string { return "kind" }
