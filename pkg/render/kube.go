package render

import "k8s.io/apimachinery/pkg/api/resource"

// The parts of the Kubernetes objects we write: the hook Jobs and their RBAC,
// the static PersistentVolumes and the claims the overlay lacks. The field
// names and JSON tags are k8s.io/api's; tests decode every rendered object
// strictly into the k8s.io/api type. They are our own because encoding/json
// builds its encoders for k8s.io/api's whole type graph (PodSpec reaches
// hundreds of types) on first use, about a millisecond in every fresh
// process, and the cmp-server starts one per manifest generation.

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type objectMeta struct {
	Name        string            `json:"name,omitempty"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type job struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     jobSpec    `json:"spec"`
}

type jobSpec struct {
	BackoffLimit          *int32      `json:"backoffLimit,omitempty"`
	ActiveDeadlineSeconds *int64      `json:"activeDeadlineSeconds,omitempty"`
	Template              podTemplate `json:"template"`
}

type podTemplate struct {
	Metadata objectMeta `json:"metadata"`
	Spec     podSpec    `json:"spec"`
}

type podSpec struct {
	ServiceAccountName           string              `json:"serviceAccountName,omitempty"`
	AutomountServiceAccountToken *bool               `json:"automountServiceAccountToken,omitempty"`
	SecurityContext              *podSecurityContext `json:"securityContext,omitempty"`
	InitContainers               []container         `json:"initContainers,omitempty"`
	Containers                   []container         `json:"containers"`
	Volumes                      []volume            `json:"volumes,omitempty"`
	RestartPolicy                string              `json:"restartPolicy,omitempty"`
	NodeSelector                 map[string]string   `json:"nodeSelector,omitempty"`
	Tolerations                  []toleration        `json:"tolerations,omitempty"`
	PriorityClassName            string              `json:"priorityClassName,omitempty"`
	ImagePullSecrets             []localObjectRef    `json:"imagePullSecrets,omitempty"`
}

type toleration struct {
	Key               string `json:"key,omitempty"`
	Operator          string `json:"operator,omitempty"`
	Value             string `json:"value,omitempty"`
	Effect            string `json:"effect,omitempty"`
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

type localObjectRef struct {
	Name string `json:"name"`
}

type resourceRequirements struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

type podSecurityContext struct {
	RunAsNonRoot   *bool           `json:"runAsNonRoot,omitempty"`
	RunAsUser      *int64          `json:"runAsUser,omitempty"`
	RunAsGroup     *int64          `json:"runAsGroup,omitempty"`
	FSGroup        *int64          `json:"fsGroup,omitempty"`
	SeccompProfile *seccompProfile `json:"seccompProfile,omitempty"`
}

type container struct {
	Name            string                `json:"name"`
	Image           string                `json:"image,omitempty"`
	ImagePullPolicy string                `json:"imagePullPolicy,omitempty"`
	Command         []string              `json:"command,omitempty"`
	Args            []string              `json:"args,omitempty"`
	Env             []envVar              `json:"env,omitempty"`
	VolumeMounts    []volumeMount         `json:"volumeMounts,omitempty"`
	SecurityContext *securityContext      `json:"securityContext,omitempty"`
	Resources       *resourceRequirements `json:"resources,omitempty"`
}

type envVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type volumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

type securityContext struct {
	RunAsNonRoot             *bool           `json:"runAsNonRoot,omitempty"`
	RunAsUser                *int64          `json:"runAsUser,omitempty"`
	AllowPrivilegeEscalation *bool           `json:"allowPrivilegeEscalation,omitempty"`
	ReadOnlyRootFilesystem   *bool           `json:"readOnlyRootFilesystem,omitempty"`
	Capabilities             *capabilities   `json:"capabilities,omitempty"`
	SeccompProfile           *seccompProfile `json:"seccompProfile,omitempty"`
}

type capabilities struct {
	Drop []string `json:"drop,omitempty"`
}

type seccompProfile struct {
	Type string `json:"type"`
}

type volume struct {
	Name     string        `json:"name"`
	Secret   *secretVolume `json:"secret,omitempty"`
	EmptyDir *struct{}     `json:"emptyDir,omitempty"`
}

type secretVolume struct {
	SecretName  string      `json:"secretName"`
	Items       []keyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

type keyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

type serviceAccount struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
}

type role struct {
	typeMeta
	Metadata objectMeta   `json:"metadata"`
	Rules    []policyRule `json:"rules"`
}

type policyRule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
}

type roleBinding struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	RoleRef  roleRef    `json:"roleRef"`
	Subjects []subject  `json:"subjects"`
}

type roleRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
}

type subject struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

type persistentVolume struct {
	typeMeta
	Metadata objectMeta           `json:"metadata"`
	Spec     persistentVolumeSpec `json:"spec"`
}

type persistentVolumeSpec struct {
	Capacity                      map[string]resource.Quantity `json:"capacity"`
	AccessModes                   []string                     `json:"accessModes"`
	PersistentVolumeReclaimPolicy string                       `json:"persistentVolumeReclaimPolicy"`
	VolumeMode                    string                       `json:"volumeMode"`
	ClaimRef                      objectRef                    `json:"claimRef"`
	CSI                           csiSource                    `json:"csi"`
}

type objectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
}

type csiSource struct {
	Driver             string            `json:"driver"`
	VolumeHandle       string            `json:"volumeHandle"`
	FSType             string            `json:"fsType,omitempty"`
	VolumeAttributes   map[string]string `json:"volumeAttributes"`
	NodeStageSecretRef secretRef         `json:"nodeStageSecretRef"`
}

type secretRef struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

type persistentVolumeClaim struct {
	typeMeta
	Metadata objectMeta                `json:"metadata"`
	Spec     persistentVolumeClaimSpec `json:"spec"`
}

type persistentVolumeClaimSpec struct {
	AccessModes      []string       `json:"accessModes"`
	StorageClassName *string        `json:"storageClassName"`
	VolumeName       string         `json:"volumeName"`
	VolumeMode       string         `json:"volumeMode"`
	Resources        claimResources `json:"resources"`
}

type claimResources struct {
	Requests map[string]resource.Quantity `json:"requests"`
}

type cronJob struct {
	typeMeta
	Metadata objectMeta  `json:"metadata"`
	Spec     cronJobSpec `json:"spec"`
}

type cronJobSpec struct {
	Schedule                   string          `json:"schedule"`
	ConcurrencyPolicy          string          `json:"concurrencyPolicy,omitempty"`
	StartingDeadlineSeconds    *int64          `json:"startingDeadlineSeconds,omitempty"`
	SuccessfulJobsHistoryLimit *int32          `json:"successfulJobsHistoryLimit,omitempty"`
	FailedJobsHistoryLimit     *int32          `json:"failedJobsHistoryLimit,omitempty"`
	JobTemplate                jobTemplateSpec `json:"jobTemplate"`
}

type jobTemplateSpec struct {
	Metadata objectMeta `json:"metadata"`
	Spec     jobSpec    `json:"spec"`
}
