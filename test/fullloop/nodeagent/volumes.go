package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rbd-dr/argocd-rbd-dr/internal/cephlab"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// setUpVolumes writes each volume of the pod into a host folder, as the
// kubelet's volume plugins do, reading what it needs with the node's
// identity (the Node authorizer lets a node read only what its pods use).
func (r *podRunner) setUpVolumes(ctx context.Context) error {
	vols := map[string]string{}
	var images []string
	var stage stageUser
	for _, v := range r.pod.Spec.Volumes {
		dir := filepath.Join(r.dir, "volumes", v.Name)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		var err error
		switch {
		case v.EmptyDir != nil:
			err = os.Chmod(dir, 0o777)
		case v.Secret != nil:
			err = r.secretFiles(ctx, dir, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, mode(v.Secret.DefaultMode))
		case v.ConfigMap != nil:
			err = r.configMapFiles(ctx, dir, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, mode(v.ConfigMap.DefaultMode))
		case v.Projected != nil:
			err = r.projectedFiles(ctx, dir, v.Projected)
		case v.DownwardAPI != nil:
			err = r.downwardFiles(dir, v.DownwardAPI.Items, mode(v.DownwardAPI.DefaultMode))
		case v.PersistentVolumeClaim != nil:
			var spec string
			var user stageUser
			if spec, user, err = r.rbdImage(ctx, v.PersistentVolumeClaim.ClaimName); err == nil {
				if stage != (stageUser{}) && user != stage {
					err = fmt.Errorf("its volume's node-stage user %s is not the pod's other volumes' %s: this node agent maps a pod's volumes as one user", user.id, stage.id)
				}
				images, stage = append(images, spec), user
			}
		default:
			err = fmt.Errorf("volume %s: this node agent supports emptyDir, secret, configMap, projected, downwardAPI and persistentVolumeClaim", v.Name)
		}
		if err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		if err := r.fsGroup(dir, v.EmptyDir != nil); err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		vols[v.Name] = dir
	}
	r.mu.Lock()
	r.volumes, r.rbdImages, r.stage = vols, images, stage
	r.mu.Unlock()
	return nil
}

// fsGroup gives the pod's fsGroup the volume's files, as the kubelet does:
// group ownership (and the setgid bit on an emptyDir), so a non-root
// container reads a Secret file of mode 0440.
func (r *podRunner) fsGroup(dir string, emptyDir bool) error {
	sc := r.pod.Spec.SecurityContext
	if sc == nil || sc.FSGroup == nil {
		return nil
	}
	gid := int(*sc.FSGroup)
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, -1, gid)
	}); err != nil {
		return err
	}
	if emptyDir {
		return os.Chmod(dir, 0o777|os.ModeSetgid)
	}
	return nil
}

func mode(m *int32) os.FileMode {
	if m == nil {
		return 0o644
	}
	return os.FileMode(*m)
}

func writeItems(dir string, data map[string][]byte, items []corev1.KeyToPath, def os.FileMode) error {
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			return fmt.Errorf("no key %q", it.Key)
		}
		m := def
		if it.Mode != nil {
			m = os.FileMode(*it.Mode)
		}
		p := filepath.Join(dir, filepath.FromSlash(it.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, v, m); err != nil {
			return err
		}
		if err := os.Chmod(p, m); err != nil {
			return err
		}
	}
	return nil
}

func (r *podRunner) secretFiles(ctx context.Context, dir, name string, items []corev1.KeyToPath, optional *bool, m os.FileMode) error {
	s, err := r.a.client.CoreV1().Secrets(r.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil
	}
	if err != nil {
		return fmt.Errorf("secret %s: %w", name, err)
	}
	return writeItems(dir, s.Data, items, m)
}

func (r *podRunner) configMapFiles(ctx context.Context, dir, name string, items []corev1.KeyToPath, optional *bool, m os.FileMode) error {
	cm, err := r.a.client.CoreV1().ConfigMaps(r.pod.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && optional != nil && *optional {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configmap %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return writeItems(dir, data, items, m)
}

// projectedFiles covers the ServiceAccount token volume the API server
// injects (token from TokenRequest, bound to this pod; kube-root-ca.crt;
// the namespace) and any other projection of the same sources.
func (r *podRunner) projectedFiles(ctx context.Context, dir string, p *corev1.ProjectedVolumeSource) error {
	def := mode(p.DefaultMode)
	for _, src := range p.Sources {
		var err error
		switch {
		case src.ServiceAccountToken != nil:
			err = r.tokenFile(ctx, dir, src.ServiceAccountToken, def)
		case src.ConfigMap != nil:
			err = r.configMapFiles(ctx, dir, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, def)
		case src.Secret != nil:
			err = r.secretFiles(ctx, dir, src.Secret.Name, src.Secret.Items, src.Secret.Optional, def)
		case src.DownwardAPI != nil:
			err = r.downwardFiles(dir, src.DownwardAPI.Items, def)
		default:
			err = fmt.Errorf("unsupported projected source")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *podRunner) tokenFile(ctx context.Context, dir string, src *corev1.ServiceAccountTokenProjection, m os.FileMode) error {
	sa := r.pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authv1.TokenRequest{Spec: authv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: r.pod.Name, UID: r.pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	tr, err := r.a.client.CoreV1().ServiceAccounts(r.pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("TokenRequest for %s/%s: %w", r.pod.Namespace, sa, err)
	}
	return writeItems(dir, map[string][]byte{"token": []byte(tr.Status.Token)}, []corev1.KeyToPath{{Key: "token", Path: src.Path}}, m)
}

func (r *podRunner) downwardFiles(dir string, items []corev1.DownwardAPIVolumeFile, m os.FileMode) error {
	data := map[string][]byte{}
	var kp []corev1.KeyToPath
	for _, it := range items {
		if it.FieldRef == nil {
			return fmt.Errorf("downwardAPI %s: only fieldRef is supported", it.Path)
		}
		v, err := r.field(it.FieldRef.FieldPath)
		if err != nil {
			return err
		}
		data[it.Path] = []byte(v)
		kp = append(kp, corev1.KeyToPath{Key: it.Path, Path: it.Path, Mode: it.Mode})
	}
	return writeItems(dir, data, kp, m)
}

// field is a downward API field of the pod.
func (r *podRunner) field(path string) (string, error) {
	switch path {
	case "metadata.namespace":
		return r.pod.Namespace, nil
	case "metadata.name":
		return r.pod.Name, nil
	case "metadata.uid":
		return string(r.pod.UID), nil
	case "spec.nodeName":
		return r.pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return r.pod.Spec.ServiceAccountName, nil
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		return r.pod.Labels[strings.TrimSuffix(k, "']")], nil
	}
	if k, ok := strings.CutPrefix(path, "metadata.annotations['"); ok {
		return r.pod.Annotations[strings.TrimSuffix(k, "']")], nil
	}
	return "", fmt.Errorf("downward API field %s is not supported", path)
}

// stageUser is a CephX user and its key, from a node-stage Secret.
type stageUser struct{ id, key string }

// rbdImage is the image behind a PVC, as ceph-csi finds it: its bound PV's
// pool, the RADOS namespace ceph-csi's config gives the PV's clusterID (with
// a config), and its imageName (a volume ceph-csi provisioned) or its
// volumeHandle (a static volume, as the plugin renders); and the user
// ceph-csi maps it with, from the node-stage Secret the PV names (its keys
// userID and userKey), read with the node's identity as the kubelet's CSI
// driver would.
func (r *podRunner) rbdImage(ctx context.Context, claim string) (string, stageUser, error) {
	pvc, err := r.a.client.CoreV1().PersistentVolumeClaims(r.pod.Namespace).Get(ctx, claim, metav1.GetOptions{})
	if err != nil {
		return "", stageUser{}, fmt.Errorf("pvc %s: %w", claim, err)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		return "", stageUser{}, fmt.Errorf("pvc %s is not bound yet", claim)
	}
	pv, err := r.a.client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		return "", stageUser{}, fmt.Errorf("pv %s: %w", pvc.Spec.VolumeName, err)
	}
	csi := pv.Spec.CSI
	if csi == nil || csi.VolumeAttributes["pool"] == "" {
		return "", stageUser{}, fmt.Errorf("pv %s is not a ceph-csi RBD volume with a pool", pv.Name)
	}
	ref := csi.NodeStageSecretRef
	if ref == nil {
		return "", stageUser{}, fmt.Errorf("pv %s names no nodeStageSecretRef: ceph-csi could not map it", pv.Name)
	}
	secret, err := r.a.client.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
	if err != nil {
		return "", stageUser{}, fmt.Errorf("pv %s's node-stage Secret %s/%s: %w", pv.Name, ref.Namespace, ref.Name, err)
	}
	user := stageUser{string(secret.Data["userID"]), string(secret.Data["userKey"])}
	if user.id == "" || user.key == "" {
		return "", stageUser{}, fmt.Errorf("node-stage Secret %s/%s has no userID and userKey", ref.Namespace, ref.Name)
	}
	img := rbd.Image{Pool: csi.VolumeAttributes["pool"], Name: csi.VolumeHandle}
	if name := csi.VolumeAttributes["imageName"]; name != "" {
		img.Name = name
	}
	if r.a.csi != nil {
		if img.Namespace, err = cephlab.RadosNamespace(r.a.csi, csi.VolumeAttributes["clusterID"]); err != nil {
			return "", stageUser{}, fmt.Errorf("pv %s: %w", pv.Name, err)
		}
	}
	return img.String(), user, nil
}
