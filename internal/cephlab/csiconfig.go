package cephlab

import (
	"encoding/json"
	"fmt"
	"os"
)

// CSICluster is one entry of ceph-csi's cluster config (the config.json of
// the ConfigMap Rook names ceph-csi-config): what a PV's clusterID stands
// for. A clusterID of a RADOS namespace names it under rbd.
type CSICluster struct {
	ClusterID string   `json:"clusterID"`
	Monitors  []string `json:"monitors"`
	RBD       struct {
		RadosNamespace string `json:"radosNamespace,omitempty"`
	} `json:"rbd"`
}

// ReadCSIConfig reads ceph-csi's cluster config from a file.
func ReadCSIConfig(path string) ([]CSICluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var cs []CSICluster
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("%s: not ceph-csi's cluster config: %w", path, err)
	}
	return cs, nil
}

// RadosNamespace is the RADOS namespace ceph-csi opens a volume of the
// clusterID in ("" for the pool's own); a clusterID the config does not
// hold is an error, as ceph-csi refuses to stage the volume.
func RadosNamespace(cs []CSICluster, clusterID string) (string, error) {
	for _, c := range cs {
		if c.ClusterID == clusterID {
			return c.RBD.RadosNamespace, nil
		}
	}
	return "", fmt.Errorf("clusterID %q is not in ceph-csi's cluster config: ceph-csi cannot stage the volume", clusterID)
}
