// Package plugin holds plugin.yaml, the ConfigManagementPlugin the Argo CD
// sidecar loads. The file is generated from pkg/cmpenv's parameter table; the
// test here fails when the two drift and refreshes the file with -update.
package plugin
