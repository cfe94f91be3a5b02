package render

import (
	"slices"
	"strconv"
	"strings"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
	model "github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// Argo CD's hook annotations. WaveAnnotation orders the hooks and the
// app-of-apps' Applications; plan reads it back.
const (
	hookAnnotation   = "argocd.argoproj.io/hook"
	deleteAnnotation = "argocd.argoproj.io/hook-delete-policy"
	WaveAnnotation   = "argocd.argoproj.io/sync-wave"
)

// Where the Ceph Jobs find our binary, delivered by an initContainer.
const (
	binDir  = "/opt/rbd-dr/bin"
	binPath = binDir + "/" + cmpenv.Binary
)

// Waves of the PreSync hooks. Within PreSync, Argo CD runs lower waves first
// and waits for each to finish. Within a wave it applies kind by kind
// (ServiceAccount, Role, RoleBinding, then Job: gitops-engine's runTasks),
// so the quiesce and demote steps' access goes in quiesce's wave: a wave
// of its own cost every passive sync a wave's pause and round of hook
// deletions more.
const (
	waveStop    = 1 // quiesce and the access of quiesce and demote (passive)
	waveRole    = 2 // demote (passive), promote (active)
	waveRecover = 3 // resync after a forced failover (passive)
)

// hooks builds the PreSync hook objects of the role, in wave order. Every
// one of them lives in the app's namespace: the Ceph Jobs too, with the
// namespace's own Ceph user, so nothing lands in the Ceph namespace.
func hooks(pl *placement, role Role) ([]Object, error) {
	p := pl.policy
	pvcs := make([]string, len(p.Volumes))
	for i, v := range p.Volumes {
		pvcs[i] = v.PVC
	}
	base := cephRequest(pl)

	var objs []any
	if role == Active {
		// One Job: promote does prepare's work first (a copy in error
		// resynced from a healthy primary peer), which as a Job of its
		// own cost a sync wave and a pod more before the app starts.
		promote := base
		promote.Step, promote.RPO, promote.Force = hookcmd.Promote, pl.tenant.Interval, p.ForcePromote
		objs = append(objs, cephJob(pl, promote, waveRole))
	} else {
		quiesce, demote := hookcmd.Request{Timeout: base.Timeout, Parallelism: base.Parallelism}, base
		quiesce.Step, quiesce.Namespace, quiesce.Targets = hookcmd.Quiesce, pl.namespace, pvcs
		quiesce.Kinds = pl.stops
		demote.Step, demote.ForcePromoted = hookcmd.Demote, p.ForcePromote
		demote.Namespace, demote.Claims = pl.namespace, pvcs
		objs = append(objs, hookRBAC(p, pl.namespace, hookcmd.Quiesce, quiesceRules(model.Core.With(pl.stops...)))...)
		objs = append(objs, hookRBAC(p, pl.namespace, hookcmd.Demote, []policyRule{podsList})...)
		objs = append(objs, quiesceJob(pl, quiesce), cephJob(pl, demote, waveRole))
		if p.ForcePromote {
			resync := base
			resync.Step, resync.ForcePromoted = hookcmd.Resync, true
			objs = append(objs, cephJob(pl, resync, waveRecover))
		}
	}
	out := make([]Object, 0, len(objs))
	for _, o := range objs {
		m, err := toObject(o)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// cephRequest is what every Ceph step of the app is given: its images, its
// pools, and this site's monitors; cephPod picks the Ceph user.
func cephRequest(pl *placement) hookcmd.Request {
	p := pl.policy
	images := make([]string, len(p.Volumes))
	for i, v := range p.Volumes {
		images[i] = v.Spec()
	}
	return hookcmd.Request{
		Timeout: p.Hooks.StepTimeout, Parallelism: p.Hooks.Parallelism, Targets: images, Pools: pl.tenant.Places(),
		Ceph: rbd.Conn{KeyFile: cephKey.file(), MonHost: strings.Join(pl.ceph.Monitors, ",")},
	}
}

func hookMeta(p *config.Policy, name, namespace string, step hookcmd.Step, wave int) objectMeta {
	return objectMeta{
		Name:      name,
		Namespace: namespace,
		Labels:    labels(p.Name, string(step)),
		Annotations: map[string]string{
			hookAnnotation:   "PreSync",
			deleteAnnotation: "BeforeHookCreation",
			WaveAnnotation:   strconv.Itoa(wave),
		},
	}
}

// scheduled sizes and places a hook or check pod as the platform's
// settings say (hookPods): every container's resources, the node selector,
// tolerations, priority class and image pull Secrets.
func scheduled(pl *placement, pod podSpec) podSpec {
	h := pl.pods
	if r := h.Resources; r != nil {
		for _, cs := range [][]container{pod.InitContainers, pod.Containers} {
			for i := range cs {
				cs[i].Resources = &resourceRequirements{Requests: r.Requests, Limits: r.Limits}
			}
		}
	}
	if pl.version != "" {
		for i := range pod.Containers {
			pod.Containers[i].Env = append(pod.Containers[i].Env, envVar{Name: hookcmd.RendererVersionEnv, Value: pl.version})
		}
	}
	pod.NodeSelector, pod.PriorityClassName = h.NodeSelector, h.PriorityClassName
	for _, t := range h.Tolerations {
		pod.Tolerations = append(pod.Tolerations, toleration(t))
	}
	for _, name := range h.ImagePullSecrets {
		pod.ImagePullSecrets = append(pod.ImagePullSecrets, localObjectRef{Name: name})
	}
	return pod
}

func hookJob(p *config.Policy, meta objectMeta, step hookcmd.Step, pod podSpec) *job {
	pod.RestartPolicy = "Never"
	return &job{
		typeMeta: typeMeta{APIVersion: "batch/v1", Kind: "Job"},
		Metadata: meta,
		Spec: jobSpec{
			BackoffLimit:          p.Hooks.BackoffLimit,
			ActiveDeadlineSeconds: p.Hooks.ActiveDeadlineSeconds,
			Template: podTemplate{
				Metadata: objectMeta{Labels: labels(p.Name, string(step))},
				Spec:     pod,
			},
		},
	}
}

// keyMount is where a Ceph Job finds one CephX key: a Secret volume of its
// own, mounted read-only at dir, holding the key as the file keyFile.
type keyMount struct{ name, dir string }

const keyFile = "key"

var (
	// cephKey is the app namespace's Ceph user's key.
	cephKey = keyMount{name: "ceph-key", dir: "/etc/rbd-dr/ceph"}
	// peerKey is the peer reader's key, as made on the other site.
	peerKey = keyMount{name: "peer-key", dir: "/etc/rbd-dr/peer"}
)

func (k keyMount) file() string { return k.dir + "/" + keyFile }

// mount is the container's read-only mount of the key's volume.
func (k keyMount) mount() volumeMount {
	return volumeMount{Name: k.name, MountPath: k.dir, ReadOnly: true}
}

// volume puts ref's key at k.file(): group-readable (the pod's fsGroup is
// the user's), and never optional, so a missing Secret stops the pod before
// the step runs.
func (k keyMount) volume(ref config.SecretKeyRef) volume {
	never, keyMode := false, int32(0o440)
	return volume{Name: k.name, Secret: &secretVolume{
		SecretName:  ref.Name,
		Optional:    &never,
		DefaultMode: &keyMode,
		Items:       []keyToPath{{Key: ref.Key, Path: keyFile}},
	}}
}

// cephJob runs a step with rbd from the platform's Ceph image, as the app
// namespace's Ceph user, whose key comes from that namespace's Secret; an
// initContainer from argocd-rbd-dr's image copies our binary into the pod.
// Both images are pinned by digest in the settings. Demote and promote also
// get the peer reader, when the platform set one, and the other site's
// monitors: the flags and the key's mount are written here together.
func cephJob(pl *placement, req hookcmd.Request, wave int) *job {
	return hookJob(pl.policy, hookMeta(pl.policy, objectName(pl.policy.Name, string(req.Step)), pl.namespace, req.Step, wave), req.Step, cephPod(pl, req))
}

// cephPod is the pod of a Ceph step: cephJob's, and the rpo-check's.
func cephPod(pl *placement, req hookcmd.Request) podSpec {
	never := false
	bin := volumeMount{Name: "rbd-dr-bin", MountPath: binDir}
	// A Job of a forced failover runs as forceUser where the settings give
	// one: only it may blocklist the dead holder of a stale primary's lock.
	key := pl.tenant.KeyFor(req.Force || req.ForcePromoted)
	req.Ceph.ID = key.User
	mounts := []volumeMount{{Name: bin.Name, MountPath: bin.MountPath, ReadOnly: true}, cephKey.mount()}
	volumes := []volume{cephKey.volume(key.Secret)}
	if r := pl.tenant.PeerReader; r != nil && pl.peer != nil && req.Step.ReadsPeer() {
		req.Peer = rbd.Conn{ID: r.User, KeyFile: peerKey.file(), MonHost: strings.Join(pl.peer.Monitors, ",")}
		mounts = append(mounts, peerKey.mount())
		volumes = append(volumes, peerKey.volume(r.Secret))
	}
	// Demote reads which pods mount its claims (hookRBAC) with a token of
	// its own account; the other Ceph steps get no token at all.
	account, token := "", &never
	if len(req.Claims) > 0 {
		yes := true
		account, token = objectName(pl.policy.Name, string(req.Step)), &yes
	}
	return scheduled(pl, podSpec{
		ServiceAccountName:           account,
		AutomountServiceAccountToken: token,
		SecurityContext:              podSecurity(),
		RestartPolicy:                "Never",
		InitContainers: []container{{
			Name:            "install-" + cmpenv.Binary,
			Image:           pl.images.Hook,
			ImagePullPolicy: "IfNotPresent",
			Command:         []string{cmpenv.Binary, "copy-self", binPath},
			VolumeMounts:    []volumeMount{bin},
			SecurityContext: restricted(),
		}},
		Containers: []container{{
			Name:            string(req.Step),
			Image:           pl.images.Ceph,
			ImagePullPolicy: "IfNotPresent",
			Command:         []string{binPath, "hook", string(req.Step)},
			Args:            req.Args(),
			VolumeMounts:    mounts,
			SecurityContext: restricted(),
		}},
		Volumes: append(volumes, volume{Name: bin.Name, EmptyDir: &struct{}{}}),
	})
}

// hookUser is the user every hook container runs as: the sidecar's, and
// not root, whatever the image says.
const hookUser = int64(999)

// podSecurity is the hook pods' security context: non-root, the runtime's
// default seccomp profile, and the user's group on mounted Secrets.
func podSecurity() *podSecurityContext {
	yes, uid := true, hookUser
	return &podSecurityContext{
		RunAsNonRoot:   &yes,
		RunAsUser:      &uid,
		RunAsGroup:     &uid,
		FSGroup:        &uid,
		SeccompProfile: &seccompProfile{Type: "RuntimeDefault"},
	}
}

// restricted is every hook container's security context: it runs as
// hookUser and needs nothing else.
func restricted() *securityContext {
	yes, no, uid := true, false, hookUser
	return &securityContext{
		RunAsNonRoot:             &yes,
		RunAsUser:                &uid,
		AllowPrivilegeEscalation: &no,
		ReadOnlyRootFilesystem:   &yes,
		Capabilities:             &capabilities{Drop: []string{"ALL"}},
		SeccompProfile:           &seccompProfile{Type: "RuntimeDefault"},
	}
}

// quiesceJob runs in the app's namespace, with the ServiceAccount of quiesceRBAC.
func quiesceJob(pl *placement, req hookcmd.Request) *job {
	p, namespace := pl.policy, pl.namespace
	name := objectName(p.Name, string(hookcmd.Quiesce))
	pod := scheduled(pl, podSpec{
		ServiceAccountName: name,
		SecurityContext:    podSecurity(),
		Containers: []container{{
			Name:            string(hookcmd.Quiesce),
			Image:           pl.images.Hook,
			ImagePullPolicy: "IfNotPresent",
			Command:         []string{cmpenv.Binary, "hook", string(hookcmd.Quiesce)},
			Args:            req.Args(),
			SecurityContext: restricted(),
		}},
	})
	return hookJob(p, hookMeta(p, name, namespace, hookcmd.Quiesce, waveStop), hookcmd.Quiesce, pod)
}

// quiesceRules: list and patch every kind quiesce stops (pkg/workload:
// Deployments, StatefulSets, CronJobs, and the Rollouts or kinds the
// settings teach that the app has), by API group, and list the pods to see
// which mount the volumes.
func quiesceRules(kinds model.Catalog) []policyRule {
	var rules []policyRule
	for _, k := range kinds.Stoppable() {
		i := slices.IndexFunc(rules, func(r policyRule) bool { return r.APIGroups[0] == k.Group })
		if i < 0 {
			rules = append(rules, policyRule{APIGroups: []string{k.Group}, Verbs: []string{"list", "patch"}})
			i = len(rules) - 1
		}
		rules[i].Resources = append(rules[i].Resources, k.Resource)
	}
	return append(rules, podsList)
}

// podsList lets quiesce and demote see which pods mount the volumes.
var podsList = policyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}

// hookRBAC is the ServiceAccount of a hook that calls the API (quiesce:
// quiesceRules; demote: podsList), with rules in the app's namespace only.
// They are hooks of quiesce's wave, which Argo CD applies kind by kind, so
// they exist before quiesce's Job and before demote's wave.
func hookRBAC(p *config.Policy, namespace string, step hookcmd.Step, rules []policyRule) []any {
	name := objectName(p.Name, string(step))
	meta := hookMeta(p, name, namespace, step, waveStop)
	return []any{
		&serviceAccount{typeMeta: typeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, Metadata: meta},
		&role{
			typeMeta: typeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			Metadata: meta,
			Rules:    rules,
		},
		&roleBinding{
			typeMeta: typeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			Metadata: meta,
			RoleRef:  roleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects: []subject{{Kind: "ServiceAccount", Name: name, Namespace: namespace}},
		},
	}
}
