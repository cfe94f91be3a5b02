package testutil

import (
	"path"

	corev1 "k8s.io/api/core/v1"
)

// SecretFile is where a pod's first container reads file from: the Secret
// volume mounted in file's folder with an item that becomes file, the mount,
// and the Secret's key behind the file. All nil and "" if no Secret provides it.
func SecretFile(pod corev1.PodSpec, file string) (*corev1.SecretVolumeSource, *corev1.VolumeMount, string) {
	for i, m := range pod.Containers[0].VolumeMounts {
		if m.MountPath != path.Dir(file) {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			for _, it := range v.Secret.Items {
				if it.Path == path.Base(file) {
					return v.Secret, &pod.Containers[0].VolumeMounts[i], it.Key
				}
			}
		}
	}
	return nil, nil, ""
}
