package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// toolbox is Rook's toolbox.sh as the Ceph hook Jobs run it (--skip-watch):
// ceph.conf with the monitors from the mounted rook-ceph-mon-endpoints
// ConfigMap, and a keyring for ROOK_CEPH_USERNAME with the key from the
// mounted Secret, both in /etc/ceph where rbd looks by default.
func toolbox(args []string) error {
	const (
		monConfig = "/etc/rook/mon-endpoints"
		keyFile   = "/var/lib/rook-ceph-mon/secret.keyring"
		cephConf  = "/etc/ceph/ceph.conf"
		keyring   = "/etc/ceph/keyring"
	)
	endpoints, err := os.ReadFile(monConfig)
	if err != nil {
		return fmt.Errorf("toolbox.sh: %w", err)
	}
	// "a=10.0.0.1:3300,b=..." -> "10.0.0.1:3300,..."
	mons := regexp.MustCompile(`[a-z0-9_-]+=`).ReplaceAllString(strings.TrimSpace(string(endpoints)), "")
	user := os.Getenv("ROOK_CEPH_USERNAME")
	if user == "" {
		return fmt.Errorf("toolbox.sh: ROOK_CEPH_USERNAME is not set")
	}
	secret := os.Getenv("ROOK_CEPH_SECRET")
	if b, err := os.ReadFile(keyFile); err == nil {
		secret = strings.TrimSpace(string(b))
	}
	if secret == "" {
		return fmt.Errorf("toolbox.sh: no key in %s or ROOK_CEPH_SECRET", keyFile)
	}
	conf := fmt.Sprintf("[global]\nmon_host = %s\n\n[%s]\nkeyring = %s\n", mons, user, keyring)
	if err := os.WriteFile(cephConf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("toolbox.sh: %w", err)
	}
	if err := os.WriteFile(keyring, []byte(fmt.Sprintf("[%s]\nkey = %s\n", user, secret)), 0o600); err != nil {
		return fmt.Errorf("toolbox.sh: %w", err)
	}
	fmt.Printf("toolbox.sh: wrote %s (mon_host = %s) and %s for %s\n", cephConf, mons, keyring, user)
	return nil
}
