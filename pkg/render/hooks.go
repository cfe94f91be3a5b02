package render

import (
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/hookcmd"
)

// Argo CD's hook annotations.
const (
	hookAnnotation   = "argocd.argoproj.io/hook"
	deleteAnnotation = "argocd.argoproj.io/hook-delete-policy"
	waveAnnotation   = "argocd.argoproj.io/sync-wave"
)

// Where the Ceph Jobs find our binary, delivered by an initContainer.
const (
	binDir  = "/opt/rbd-dr/bin"
	binPath = binDir + "/" + cmpenv.Binary
)

// Waves of the PreSync hooks. Within PreSync, Argo CD runs lower waves first
// and waits for each to finish.
const (
	waveRBAC    = 0
	waveStop    = 1 // quiesce (passive), prepare (active)
	waveRole    = 2 // demote (passive), promote (active)
	waveRecover = 3 // resync after a forced failover (passive)
)

// hooks builds the PreSync hook objects of the role, in wave order. Every
// one of them lives in the app's namespace: the Ceph Jobs too, with the
// namespace's own Ceph user, so nothing lands in the Ceph namespace.
func hooks(pl *placement, role Role) ([]Object, error) {
	p := pl.policy
	images := make([]string, len(p.Volumes))
	pvcs := make([]string, len(p.Volumes))
	for i, v := range p.Volumes {
		images[i], pvcs[i] = v.Spec(), v.PVC
	}
	base := hookcmd.Request{Timeout: p.Hooks.StepTimeout, Parallelism: p.Hooks.Parallelism, Targets: images}
	base.Pools = pl.tenant.Pools
	base.Ceph.ID = pl.tenant.CephUser
	base.Ceph.KeyFile = cephKeyDir + "/" + cephKeyFile
	base.Ceph.MonHost = strings.Join(pl.ceph.Monitors, ",")

	var objs []runtime.Object
	if role == Active {
		prepare, promote := base, base
		prepare.Step, promote.Step = hookcmd.Prepare, hookcmd.Promote
		promote.Force = p.ForcePromote
		objs = append(objs, cephJob(pl, prepare, waveStop), cephJob(pl, promote, waveRole))
	} else {
		quiesce, demote := hookcmd.Request{Timeout: base.Timeout, Parallelism: base.Parallelism}, base
		quiesce.Step, quiesce.Namespace, quiesce.Targets = hookcmd.Quiesce, pl.namespace, pvcs
		demote.Step = hookcmd.Demote
		objs = append(objs, quiesceRBAC(p, pl.namespace)...)
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

func hookMeta(p *config.Policy, name, namespace string, step hookcmd.Step, wave int) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: namespace,
		Labels:    labels(p.Name, string(step)),
		Annotations: map[string]string{
			hookAnnotation:   "PreSync",
			deleteAnnotation: "BeforeHookCreation",
			waveAnnotation:   strconv.Itoa(wave),
		},
	}
}

func jobSpec(p *config.Policy, step hookcmd.Step, pod corev1.PodSpec) batchv1.JobSpec {
	pod.RestartPolicy = corev1.RestartPolicyNever
	return batchv1.JobSpec{
		BackoffLimit:          p.Hooks.BackoffLimit,
		ActiveDeadlineSeconds: p.Hooks.ActiveDeadlineSeconds,
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: labels(p.Name, string(step))},
			Spec:       pod,
		},
	}
}

// Where a Ceph Job finds its Ceph user's key.
const (
	cephKeyDir  = "/etc/rbd-dr/ceph"
	cephKeyFile = "key"
)

// cephJob runs a step with rbd from the platform's Ceph image, as the app
// namespace's Ceph user, whose key comes from that namespace's Secret; an
// initContainer from argocd-rbd-dr's image copies our binary into the pod.
// Both images are pinned by digest in the settings.
func cephJob(pl *placement, req hookcmd.Request, wave int) *batchv1.Job {
	never := false
	keyMode := int32(0o440) // group-readable: the pod's fsGroup is the user's
	bin := corev1.VolumeMount{Name: "rbd-dr-bin", MountPath: binDir}
	pod := corev1.PodSpec{
		AutomountServiceAccountToken: &never,
		SecurityContext:              podSecurity(),
		InitContainers: []corev1.Container{{
			Name:            "install-" + cmpenv.Binary,
			Image:           pl.images.Hook,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{cmpenv.Binary, "copy-self", binPath},
			VolumeMounts:    []corev1.VolumeMount{bin},
			SecurityContext: restricted(),
		}},
		Containers: []corev1.Container{{
			Name:            string(req.Step),
			Image:           pl.images.Ceph,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{binPath, "hook", string(req.Step)},
			Args:            req.Args(),
			VolumeMounts: []corev1.VolumeMount{
				{Name: bin.Name, MountPath: bin.MountPath, ReadOnly: true},
				{Name: "ceph-key", MountPath: cephKeyDir, ReadOnly: true},
			},
			SecurityContext: restricted(),
		}},
		Volumes: []corev1.Volume{
			{Name: "ceph-key", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName:  pl.tenant.CephSecret.Name,
				Optional:    &never,
				DefaultMode: &keyMode,
				Items:       []corev1.KeyToPath{{Key: pl.tenant.CephSecret.Key, Path: cephKeyFile}},
			}}},
			{Name: "rbd-dr-bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: hookMeta(pl.policy, objectName(pl.policy.Name, string(req.Step)), pl.namespace, req.Step, wave),
		Spec:       jobSpec(pl.policy, req.Step, pod),
	}
}

// hookUser is the user every hook container runs as: the sidecar's, and
// not root, whatever the image says.
const hookUser = int64(999)

// podSecurity is the hook pods' security context: non-root, the runtime's
// default seccomp profile, and the user's group on mounted Secrets.
func podSecurity() *corev1.PodSecurityContext {
	yes, uid := true, hookUser
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   &yes,
		RunAsUser:      &uid,
		RunAsGroup:     &uid,
		FSGroup:        &uid,
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// restricted is every hook container's security context: it runs as
// hookUser and needs nothing else.
func restricted() *corev1.SecurityContext {
	yes, no, uid := true, false, hookUser
	return &corev1.SecurityContext{
		RunAsNonRoot:             &yes,
		RunAsUser:                &uid,
		AllowPrivilegeEscalation: &no,
		ReadOnlyRootFilesystem:   &yes,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// quiesceJob runs in the app's namespace, with the ServiceAccount of quiesceRBAC.
func quiesceJob(pl *placement, req hookcmd.Request) *batchv1.Job {
	p, namespace := pl.policy, pl.namespace
	name := objectName(p.Name, string(hookcmd.Quiesce))
	pod := corev1.PodSpec{
		ServiceAccountName: name,
		SecurityContext:    podSecurity(),
		Containers: []corev1.Container{{
			Name:            string(hookcmd.Quiesce),
			Image:           pl.images.Hook,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{cmpenv.Binary, "hook", string(hookcmd.Quiesce)},
			Args:            req.Args(),
			SecurityContext: restricted(),
		}},
	}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: hookMeta(p, name, namespace, hookcmd.Quiesce, waveStop),
		Spec:       jobSpec(p, hookcmd.Quiesce, pod),
	}
}

// quiesceRBAC lets the quiesce Job scale the app's workloads and watch its
// pods, in the app's namespace only. These are hooks of an earlier wave, so
// they exist before the Job starts.
func quiesceRBAC(p *config.Policy, namespace string) []runtime.Object {
	name := objectName(p.Name, string(hookcmd.Quiesce))
	meta := hookMeta(p, name, namespace, hookcmd.Quiesce, waveRBAC)
	return []runtime.Object{
		&corev1.ServiceAccount{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: meta},
		&rbacv1.Role{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
			ObjectMeta: meta,
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "watch", "patch"}},
				{APIGroups: []string{"apps"}, Resources: []string{"deployments/scale", "statefulsets/scale"}, Verbs: []string{"get", "patch", "update"}},
				{APIGroups: []string{"apps"}, Resources: []string{"replicasets"}, Verbs: []string{"get", "list"}},
				{APIGroups: []string{""}, Resources: []string{"pods", "persistentvolumeclaims"}, Verbs: []string{"get", "list", "watch"}},
			},
		},
		&rbacv1.RoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
			ObjectMeta: meta,
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: namespace}},
		},
	}
}
