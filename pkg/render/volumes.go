package render

import (
	"encoding/base32"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/kustomize/api/resmap"
	kresource "sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/yaml"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
	model "github.com/rbd-dr/argocd-rbd-dr/pkg/workload"
)

// stopWorkloads is the passive-site transform: every workload that
// argocd-rbd-dr can stop, stopped as pkg/workload says (Deployments,
// StatefulSets and Rollouts at zero replicas, CronJobs suspended, a taught
// kind by its field), nothing else changed.
func stopWorkloads(app resmap.ResMap, kinds model.Catalog) error {
	return setStopField(app, kinds, false)
}

// startWorkloads (active site) states the field that stops each workload
// where git leaves it out, at the value Kubernetes would default it to
// (replicas 1, suspend false): Argo CD's apply then undoes a stop made
// outside git, which it would otherwise leave as it found it.
func startWorkloads(app resmap.ResMap, kinds model.Catalog) error {
	return setStopField(app, kinds, true)
}

func setStopField(app resmap.ResMap, kinds model.Catalog, start bool) error {
	for _, res := range app.Resources() {
		k, ok := kinds.Lookup(res.GetGvk().Group, res.GetKind())
		if !ok || !k.CanStop() {
			continue
		}
		v := k.StopValue
		if start {
			if k.StartValue == nil {
				continue
			}
			node, err := res.Pipe(yaml.Lookup(k.StopPath...))
			if err != nil {
				return fmt.Errorf("%s %s: reading %s: %w", k.Name, res.GetName(), strings.Join(k.StopPath, "."), err)
			}
			if node != nil {
				continue // git says
			}
			v = k.StartValue
		}
		tag, value := yaml.NodeTagInt, fmt.Sprint(v)
		if _, isBool := v.(bool); isBool {
			tag = yaml.NodeTagBool
		}
		node := yaml.NewRNode(&yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value})
		parent, field := k.StopPath[:len(k.StopPath)-1], k.StopPath[len(k.StopPath)-1]
		if err := res.PipeE(yaml.LookupCreate(yaml.MappingNode, parent...), yaml.SetField(field, node)); err != nil {
			return fmt.Errorf("%s %s: setting %s: %w", k.Name, res.GetName(), strings.Join(k.StopPath, "."), err)
		}
	}
	return nil
}

// extraStops are the kinds beyond model.Core that argocd-rbd-dr stops and
// the app has, in the catalog's order.
func extraStops(app resmap.ResMap, kinds model.Catalog) []model.Kind {
	var out []model.Kind
	for _, k := range kinds.Stoppable() {
		if model.Core.Has(k) {
			continue
		}
		for _, res := range app.Resources() {
			if res.GetGvk().Group == k.Group && res.GetKind() == k.Name {
				out = append(out, k)
				break
			}
		}
	}
	return out
}

// The defaults of a claim that says nothing else, as Kubernetes has them.
const (
	readWriteOnce = "ReadWriteOnce"
	filesystem    = "Filesystem"
)

// claim is what a static PV must agree on with its PVC.
type claim struct {
	namespace   string
	accessModes []string
	volumeMode  string
}

// bindVolumes makes a static PV per declared volume and binds the overlay's
// PVC of that name to it, adding the PVC where the overlay has none. Every
// claim is in the app's namespace (confine saw to the overlay's).
func bindVolumes(pl *placement, app resmap.ResMap) ([]Object, error) {
	p := pl.policy
	pvcs := map[string][]*kresource.Resource{}
	for _, res := range app.Resources() {
		if gvk := res.GetGvk(); gvk.Group == "" && gvk.Kind == "PersistentVolumeClaim" {
			pvcs[res.GetName()] = append(pvcs[res.GetName()], res)
		}
	}
	var pvs, added []Object
	for i, vol := range p.Volumes {
		pv, err := pvName(vol)
		if err != nil {
			return nil, fmt.Errorf("volumes[%d]: %w", i, err)
		}
		c := claim{namespace: pl.namespace, accessModes: []string{readWriteOnce}, volumeMode: filesystem}
		switch found := pvcs[vol.PVC]; len(found) {
		case 0:
			obj, err := toObject(newPVC(p.Name, vol, pv, c))
			if err != nil {
				return nil, err
			}
			added = append(added, obj)
		case 1:
			var err error
			if c, err = bindPVC(found[0], vol, pv, c); err != nil {
				return nil, refuse(fmt.Errorf("PersistentVolumeClaim %s (volumes[%d]): %w", vol.PVC, i, err), found[0])
			}
		default:
			return nil, refuse(fmt.Errorf("the overlay has %d PersistentVolumeClaims named %s; volumes[%d] needs exactly one", len(found), vol.PVC, i), found...)
		}
		obj, err := toObject(staticPV(pl, vol, pv, c))
		if err != nil {
			return nil, err
		}
		pvs = append(pvs, obj)
	}
	return append(pvs, added...), nil
}

// servable refuses a claim Kubernetes or RBD cannot serve, here rather than
// when Argo CD applies it: a volume mode that is not exactly Block or
// Filesystem, an access mode Kubernetes does not know, and a filesystem on
// an RBD image mounted read-write on more than one node (ceph-csi allows
// ReadWriteMany only for raw block volumes: two nodes writing one ext4 or
// xfs would corrupt it).
func (c claim) servable() error {
	if c.volumeMode != filesystem && c.volumeMode != "Block" {
		return fmt.Errorf("spec.volumeMode %q is neither Filesystem nor Block (the case matters); write one of them", c.volumeMode)
	}
	known := []string{readWriteOnce, "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"}
	for _, m := range c.accessModes {
		switch {
		case !slices.Contains(known, m):
			return fmt.Errorf("spec.accessModes has %q, which is not an access mode (%s)", m, strings.Join(known, ", "))
		case m == "ReadWriteMany" && c.volumeMode == filesystem:
			return fmt.Errorf("spec.accessModes has ReadWriteMany on a Filesystem volume: an RBD image holds one filesystem that only one node may mount read-write (ceph-csi allows ReadWriteMany only with volumeMode: Block); use ReadWriteOnce, or CephFS for shared files")
		}
	}
	return nil
}

// bindPVC points an overlay PVC at its static PV and reads what the PV must match.
func bindPVC(res *kresource.Resource, vol config.Volume, pv string, c claim) (claim, error) {
	c.accessModes = nil
	if name := stringAt(res, "spec", "volumeName"); name != "" && name != pv {
		return c, fmt.Errorf("spec.volumeName is %q; remove it, argocd-rbd-dr binds the claim to %s", name, pv)
	}
	if mode := stringAt(res, "spec", "volumeMode"); mode != "" {
		c.volumeMode = mode
	}
	modes, err := res.Pipe(yaml.Lookup("spec", "accessModes"))
	if err != nil {
		return c, fmt.Errorf("reading spec.accessModes: %w", err)
	}
	if modes != nil {
		for _, m := range modes.YNode().Content {
			c.accessModes = append(c.accessModes, m.Value)
		}
	}
	if len(c.accessModes) == 0 {
		c.accessModes = []string{readWriteOnce}
	}
	if err := c.servable(); err != nil {
		return c, err
	}

	set := map[string]*yaml.RNode{"volumeName": yaml.NewStringRNode(pv), "storageClassName": yaml.NewStringRNode("")}
	if req := stringAt(res, "spec", "resources", "requests", "storage"); req != "" {
		q, err := resource.ParseQuantity(req)
		if err != nil {
			return c, fmt.Errorf("spec.resources.requests.storage %q is not a quantity", req)
		}
		if q.Cmp(vol.Quantity) > 0 {
			return c, fmt.Errorf("requests %s but the image is declared as %s in rbd-dr.yaml; the claim could never bind: raise size or lower the request", req, vol.Size)
		}
	} else if err := res.PipeE(yaml.LookupCreate(yaml.MappingNode, "spec", "resources", "requests"), yaml.SetField("storage", yaml.NewStringRNode(vol.Size))); err != nil {
		return c, fmt.Errorf("setting the storage request: %w", err)
	}
	for _, field := range []string{"volumeName", "storageClassName"} {
		if err := res.PipeE(yaml.LookupCreate(yaml.MappingNode, "spec"), yaml.SetField(field, set[field])); err != nil {
			return c, fmt.Errorf("setting spec.%s: %w", field, err)
		}
	}
	return c, nil
}

func stringAt(res *kresource.Resource, path ...string) string {
	node, err := res.Pipe(yaml.Lookup(path...))
	if err != nil || node == nil {
		return ""
	}
	return yaml.GetValue(node)
}

// pvName is the static PV's name, one per image and never the same for two
// (a PV is cluster-wide): rbd.<pool>.<image>, or rbd.<pool>.<namespace>.<image>
// in a RADOS namespace, when all are DNS labels (a label holds no dot, so the
// name splits back into its parts, three or four); otherwise rbd-b32.
// followed by the base32 of the target in labels of at most 63, a form the
// first can never take.
func pvName(vol config.Volume) (string, error) {
	parts := []string{"rbd", vol.Pool, vol.Namespace, vol.Image}
	if vol.Namespace == "" {
		parts = []string{"rbd", vol.Pool, vol.Image}
	}
	if !slices.ContainsFunc(parts, func(p string) bool { return len(validation.IsDNS1123Label(p)) > 0 }) {
		return strings.Join(parts, "."), nil
	}
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte(vol.Spec())))
	labels := []string{"rbd-b32"}
	for len(enc) > 0 {
		n := min(len(enc), validation.DNS1123LabelMaxLength)
		labels, enc = append(labels, enc[:n]), enc[n:]
	}
	name := strings.Join(labels, ".")
	if len(name) > validation.DNS1123SubdomainMaxLength {
		return "", fmt.Errorf("%s cannot name its PersistentVolume within %d characters (pool and image names that are lower-case DNS labels keep it short); use shorter names", vol.Spec(), validation.DNS1123SubdomainMaxLength)
	}
	return name, nil
}

func staticPV(pl *placement, vol config.Volume, name string, c claim) *persistentVolume {
	app, site := pl.policy.Name, pl.ceph
	csi := csiSource{
		Driver:       site.CSIDriver,
		VolumeHandle: vol.Image,
		VolumeAttributes: map[string]string{
			"clusterID":     pl.tenant.ClusterID(site),
			"pool":          vol.Pool,
			"staticVolume":  "true",
			"imageFeatures": vol.ImageFeatures,
		},
		NodeStageSecretRef: secretRef{Name: site.NodeStageSecret.Name, Namespace: site.NodeStageSecret.Namespace},
	}
	if c.volumeMode != "Block" {
		csi.FSType = vol.FSType
	}
	return &persistentVolume{
		typeMeta: typeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		Metadata: objectMeta{
			Name:        name,
			Labels:      labels(app, ""),
			Annotations: map[string]string{imageAnnotation: vol.Spec()},
		},
		Spec: persistentVolumeSpec{
			Capacity:                      map[string]resource.Quantity{"storage": vol.Quantity},
			AccessModes:                   c.accessModes,
			PersistentVolumeReclaimPolicy: "Retain",
			VolumeMode:                    c.volumeMode,
			ClaimRef:                      objectRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: c.namespace, Name: vol.PVC},
			CSI:                           csi,
		},
	}
}

func newPVC(app string, vol config.Volume, pv string, c claim) *persistentVolumeClaim {
	empty := ""
	return &persistentVolumeClaim{
		typeMeta: typeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		Metadata: objectMeta{
			Name: vol.PVC, Namespace: c.namespace,
			Labels:      labels(app, ""),
			Annotations: map[string]string{imageAnnotation: vol.Spec()},
		},
		Spec: persistentVolumeClaimSpec{
			AccessModes:      c.accessModes,
			StorageClassName: &empty,
			VolumeName:       pv,
			VolumeMode:       c.volumeMode,
			Resources:        claimResources{Requests: map[string]resource.Quantity{"storage": vol.Quantity}},
		},
	}
}
