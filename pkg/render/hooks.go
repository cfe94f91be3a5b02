package render

import (
	"strconv"

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

// hooks builds the PreSync hook objects of the role, in wave order.
func hooks(p *config.Policy, site config.Site, role Role, namespace string) ([]Object, error) {
	images := make([]string, len(p.Volumes))
	pvcs := make([]string, len(p.Volumes))
	for i, v := range p.Volumes {
		images[i], pvcs[i] = v.Spec(), v.PVC
	}
	base := hookcmd.Request{Timeout: p.Hooks.StepTimeout, Parallelism: p.Hooks.Parallelism, Targets: images}

	var objs []runtime.Object
	if role == Active {
		prepare, promote := base, base
		prepare.Step, promote.Step = hookcmd.Prepare, hookcmd.Promote
		promote.Force = p.ForcePromote
		objs = append(objs, cephJob(p, site, prepare, waveStop), cephJob(p, site, promote, waveRole))
	} else {
		quiesce, demote := base, base
		quiesce.Step, quiesce.Namespace, quiesce.Targets = hookcmd.Quiesce, namespace, pvcs
		demote.Step = hookcmd.Demote
		objs = append(objs, quiesceRBAC(p, namespace)...)
		objs = append(objs, quiesceJob(p, quiesce, namespace), cephJob(p, site, demote, waveRole))
		if p.ForcePromote {
			resync := base
			resync.Step, resync.ForcePromoted = hookcmd.Resync, true
			objs = append(objs, cephJob(p, site, resync, waveRecover))
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

// cephJob runs a step with rbd, following Rook's toolbox-job pattern: the
// config-init initContainer writes /etc/ceph from the mon endpoints ConfigMap
// and the mon Secret; a second initContainer copies our binary into the pod.
func cephJob(p *config.Policy, site config.Site, req hookcmd.Request, wave int) *batchv1.Job {
	never := false
	cephConfig := corev1.VolumeMount{Name: "ceph-config", MountPath: "/etc/ceph"}
	bin := corev1.VolumeMount{Name: "rbd-dr-bin", MountPath: binDir}
	readOnly := func(m corev1.VolumeMount) corev1.VolumeMount { m.ReadOnly = true; return m }
	pod := corev1.PodSpec{
		AutomountServiceAccountToken: &never,
		InitContainers: []corev1.Container{
			{
				Name:            "config-init",
				Image:           p.Hooks.CephImage,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"/usr/local/bin/toolbox.sh"},
				Args:            []string{"--skip-watch"},
				Env: []corev1.EnvVar{{
					Name: "ROOK_CEPH_USERNAME",
					ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
						LocalObjectReference: corev1.LocalObjectReference{Name: "rook-ceph-mon"},
						Key:                  "ceph-username",
					}},
				}},
				VolumeMounts: []corev1.VolumeMount{
					cephConfig,
					{Name: "mon-endpoint-volume", MountPath: "/etc/rook"},
					{Name: "ceph-admin-secret", MountPath: "/var/lib/rook-ceph-mon"},
				},
			},
			{
				Name:            "install-" + cmpenv.Binary,
				Image:           p.Hooks.Image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{cmpenv.Binary, "copy-self", binPath},
				VolumeMounts:    []corev1.VolumeMount{bin},
				SecurityContext: restricted(),
			},
		},
		Containers: []corev1.Container{{
			Name:            string(req.Step),
			Image:           p.Hooks.CephImage,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Command:         []string{binPath, "hook", string(req.Step)},
			Args:            req.Args(),
			VolumeMounts:    []corev1.VolumeMount{readOnly(cephConfig), readOnly(bin)},
		}},
		Volumes: []corev1.Volume{
			{Name: "ceph-admin-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
				SecretName: "rook-ceph-mon",
				Optional:   &never,
				Items:      []corev1.KeyToPath{{Key: "ceph-secret", Path: "secret.keyring"}},
			}}},
			{Name: "mon-endpoint-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "rook-ceph-mon-endpoints"},
				Items:                []corev1.KeyToPath{{Key: "data", Path: "mon-endpoints"}},
			}}},
			{Name: "ceph-config", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "rbd-dr-bin", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}
	return &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: hookMeta(p, objectName(p.Name, string(req.Step)), site.CephNamespace, req.Step, wave),
		Spec:       jobSpec(p, req.Step, pod),
	}
}

// restricted is the container security context of our own image: it runs as
// the sidecar's user and needs nothing else.
func restricted() *corev1.SecurityContext {
	yes, no, uid := true, false, int64(999)
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
func quiesceJob(p *config.Policy, req hookcmd.Request, namespace string) *batchv1.Job {
	name := objectName(p.Name, string(hookcmd.Quiesce))
	pod := corev1.PodSpec{
		ServiceAccountName: name,
		Containers: []corev1.Container{{
			Name:            string(hookcmd.Quiesce),
			Image:           p.Hooks.Image,
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
