package config

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/rbd"
)

// SettingsEnv names the variable that holds the settings file's path in the
// sidecar; manifests/ mounts the platform's ConfigMap there.
const SettingsEnv = "RBD_DR_SETTINGS"

// SettingsConfigMap is the ConfigMap manifests/ mounts the settings from.
const SettingsConfigMap = "argocd-rbd-dr-settings"

// SettingsKind identifies the settings document.
const SettingsKind = "Settings"

// Settings is what the platform team decides for every app: the sites'
// clusters and Ceph connection facts, the hook images, and which app
// namespaces may move which pools with which Ceph credentials. It lives
// outside every app's repository, so nothing a team pushes can change it.
type Settings struct {
	APIVersion string   `yaml:"apiVersion"`
	Kind       string   `yaml:"kind"`
	Images     Images   `yaml:"images"`
	HookPods   HookPods `yaml:"hookPods"`
	// WorkloadKinds teaches custom kinds that run pods (kinds.go).
	WorkloadKinds []WorkloadKind `yaml:"workloadKinds"`
	// SharedPools are pools the platform lets several namespaces use,
	// knowing what it costs: a key with 'profile rbd pool=P' controls every
	// image in P, so those teams can read, write, demote and delete each
	// other's images. Any other pool is one namespace's.
	SharedPools []string        `yaml:"sharedPools"`
	Sites       []SiteSettings  `yaml:"sites"`
	Namespaces  []TenantSetting `yaml:"namespaces"`

	// File is where the settings were read from, for messages.
	File string `yaml:"-"`
}

// Images are the hook Jobs' images, pinned by digest so that a tag moved in a
// registry cannot change what runs with a team's Ceph key.
type Images struct {
	// Hook is argocd-rbd-dr's own image: quiesce, and the binary the Ceph
	// Jobs run.
	Hook string `yaml:"hook"`
	// Ceph is an image carrying the rbd CLI (Rook's rook/ceph or Ceph's own).
	Ceph string `yaml:"ceph"`
}

// SiteSettings is one Kubernetes cluster with its Ceph cluster.
type SiteSettings struct {
	Name string `yaml:"name"`
	// Cluster is the API server URL the app-of-apps deploys to.
	Cluster string `yaml:"cluster"`
	// ClusterID is ceph-csi's clusterID (Rook: the CephCluster's namespace).
	ClusterID string `yaml:"clusterID"`
	// CSIDriver is the ceph-csi RBD driver name.
	CSIDriver string `yaml:"csiDriver"`
	// NodeStageSecret is the Secret ceph-csi maps the static volumes with.
	NodeStageSecret SecretRef `yaml:"nodeStageSecret"`
	// Monitors are the Ceph monitors the hook Jobs connect to (host:port).
	Monitors []string `yaml:"monitors"`
}

// SecretRef names a Secret in a namespace.
type SecretRef struct {
	Name      string `yaml:"name"`
	Namespace string `yaml:"namespace"`
}

// TenantSetting is what one app namespace may do.
type TenantSetting struct {
	// Namespace is the app's namespace on every site.
	Namespace string `yaml:"namespace"`
	// Project is the Argo CD AppProject of the app-of-apps' Applications.
	Project string `yaml:"project"`
	// Pools are the Ceph pools whose images this namespace's apps may move.
	Pools []string `yaml:"pools"`
	// RadosNamespace, if set, is the RADOS namespace of Pools that holds
	// this namespace's images (the same name on every site): its CephX
	// users are confined to it ('profile rbd pool=P namespace=N'), so teams
	// can share a pool without reaching each other's images.
	RadosNamespace string `yaml:"radosNamespace"`
	// ClusterIDs are ceph-csi's clusterIDs for RadosNamespace, by site name:
	// ceph-csi finds an image in a RADOS namespace through a clusterID whose
	// entry names it (Rook: the CephBlockPoolRadosNamespace's status).
	ClusterIDs map[string]string `yaml:"clusterIDs"`
	// CephUser is the CephX user (without client.) the Ceph Jobs run as: a
	// Rook CephClient with caps on Pools only.
	CephUser string `yaml:"cephUser"`
	// CephSecret is the Secret in Namespace that holds CephUser's key.
	CephSecret SecretKeyRef `yaml:"cephSecret"`
	// PeerReader, if set, lets demote and promote read the peer cluster's
	// snapshots; without it they judge from this site's signals only.
	PeerReader *PeerReader `yaml:"peerReader"`
	// ForceUser, if set, is the CephX user of the Ceph Jobs rendered while
	// git says forcePromote: true, and of no other: the return of a lost
	// site demotes its stale primary, whose lock holder died with the site,
	// and breaking that lock blocklists it, which needs mon 'profile rbd'.
	// With it, cephUser needs only mon 'allow r' and cannot blocklist any
	// client of the cluster (docs/security.md).
	ForceUser *CephCredential `yaml:"forceUser"`
	// RPO is the recovery point promised to the namespace's apps: the
	// interval of the mirror snapshot schedule the platform sets on both
	// sites (e.g. 5m). Prepare and promote refuse to leave an image primary
	// without a schedule at least this often, and the rpo-check CronJob
	// fails when a copy is older than 3x it.
	RPO string `yaml:"rpo"`
	// Interval is RPO, parsed.
	Interval time.Duration `yaml:"-"`
}

// CephCredential is a CephX user and the Secret key that holds its key.
type CephCredential struct {
	// User is the CephX user without client., the same name on every site.
	User string `yaml:"user"`
	// Secret is the Secret in the app's namespace that holds User's key.
	Secret SecretKeyRef `yaml:"secret"`
}

// PeerReader is a read-only CephX user made on every site (mon 'allow r',
// osd 'profile rbd-read-only pool=<pool>' per pool), never the peer's
// rbd-mirror key, which writes to all the peer's pools. Its Secret holds
// User's key as made on the other site: a site's Jobs read the other site
// with it.
type PeerReader = CephCredential

// SecretKeyRef names one key of a Secret in the app's namespace.
type SecretKeyRef struct {
	Name string `yaml:"name"`
	// Key defaults to the user's name, as in the Secret a Rook CephClient makes.
	Key string `yaml:"key"`
}

// Site returns the named site's settings.
func (s *Settings) Site(name string) (SiteSettings, bool) {
	i := slices.IndexFunc(s.Sites, func(site SiteSettings) bool { return site.Name == name })
	if i < 0 {
		return SiteSettings{}, false
	}
	return s.Sites[i], true
}

// Tenant returns what the namespace may do, or an error that says how the
// platform team grants it.
func (s *Settings) Tenant(namespace string) (TenantSetting, error) {
	i := slices.IndexFunc(s.Namespaces, func(t TenantSetting) bool { return t.Namespace == namespace })
	if i < 0 {
		return TenantSetting{}, fmt.Errorf("namespace %q may not use argocd-rbd-dr: it is not under namespaces in the platform's settings (%s); ask the platform team to add it with its pools and Ceph credentials", namespace, s.File)
	}
	return s.Namespaces[i], nil
}

// Allows says whether the tenant may move images of pool.
func (t TenantSetting) Allows(pool string) bool { return slices.Contains(t.Pools, pool) }

// Places are where the namespace's images live, as the hook's --pools takes
// them: each pool, or pool/namespace with a RADOS namespace.
func (t TenantSetting) Places() []string {
	places := make([]string, len(t.Pools))
	for i, pool := range t.Pools {
		places[i] = rbd.Place(pool, t.RadosNamespace)
	}
	return places
}

// UserCaps are the CephX caps of the namespace's writing user (cephUser),
// the smallest with which every step runs: rbd on its pools, confined to
// its RADOS namespace if it has one, the mgr's rbd profile on the same for
// the mirror snapshot schedules, and mon 'profile rbd', or only mon 'allow
// r' when forceUser takes the Jobs of a forced failover (measured on every
// release: make e2e's mon-caps lines). manifests/tenant's CephClient gives
// the same.
func (t TenantSetting) UserCaps() map[string]string {
	mon := "profile rbd"
	if t.ForceUser != nil {
		mon = "allow r" // no blocklisting: only forceUser may
	}
	return map[string]string{"mon": mon, "osd": t.grants("profile rbd"), "mgr": t.grants("profile rbd")}
}

// ForceCaps are the caps of forceUser: cephUser's with mon 'profile rbd',
// which may blocklist the dead holder of an image's lock.
func (t TenantSetting) ForceCaps() map[string]string {
	return map[string]string{"mon": "profile rbd", "osd": t.grants("profile rbd"), "mgr": t.grants("profile rbd")}
}

// KeyFor is the user and Secret key a Ceph Job uses: forceUser's for a
// Job rendered while git says forcePromote: true, when the settings give
// one, and cephUser's otherwise.
func (t TenantSetting) KeyFor(forced bool) CephCredential {
	if forced && t.ForceUser != nil {
		return *t.ForceUser
	}
	return CephCredential{User: t.CephUser, Secret: t.CephSecret}
}

// ReaderCaps are the caps of the namespace's peer reader: read-only, on
// the same places as UserCaps, and mon 'allow r': a reader never breaks a
// lock, so it never blocklists (measured: the mon-caps lines of make e2e).
func (t TenantSetting) ReaderCaps() map[string]string {
	return map[string]string{"mon": "allow r", "osd": t.grants("profile rbd-read-only")}
}

// grants is profile on each of the namespace's places, as a cap says it.
func (t TenantSetting) grants(profile string) string {
	grants := make([]string, len(t.Pools))
	for i, pool := range t.Pools {
		grants[i] = profile + " " + rbd.Image{Pool: pool, Namespace: t.RadosNamespace}.CapScope()
	}
	return strings.Join(grants, ", ")
}

// ClusterID is the ceph-csi clusterID of the namespace's images on site:
// the RADOS namespace's own, or the site's.
func (t TenantSetting) ClusterID(site SiteSettings) string {
	if t.RadosNamespace != "" {
		return t.ClusterIDs[site.Name]
	}
	return site.ClusterID
}

// NoSettingsError says that nothing renders without the platform's settings:
// safe by default, since they decide what runs with Ceph credentials.
func NoSettingsError() error {
	return fmt.Errorf("no settings file: the platform team provides one (env %s in the sidecar, or --settings; see examples/rbd-dr-settings.yaml); without it nothing is rendered", SettingsEnv)
}

// LoadSettings reads and validates the platform's settings file. Its path is
// the platform's, never a team's, so it is read as it is, within a size limit.
func LoadSettings(path string) (*Settings, error) {
	if path == "" {
		return nil, NoSettingsError()
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("the settings file %s does not exist: the platform team creates ConfigMap %s in Argo CD's namespace with the settings under the key %s (the sidecar mounts its keys in %s; see manifests/settings); until then nothing is rendered", path, SettingsConfigMap, filepath.Base(path), filepath.Dir(path))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the settings file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the settings file %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("the settings file %s is larger than %d bytes; it holds a page of settings", path, MaxFileSize)
	}
	return ParseSettings(data, path)
}

// ParseSettings decodes and validates a settings document, every problem at once.
func ParseSettings(data []byte, file string) (*Settings, error) {
	var s Settings
	idx, problems := decodeFile(data, file, "start from examples/rbd-dr-settings.yaml", nil, &s)
	if len(problems) > 0 {
		return nil, problems
	}
	s.File = file
	v := validator{file: file, idx: idx}
	v.settings(&s)
	if len(v.problems) > 0 {
		return nil, v.problems
	}
	return &s, nil
}

func (v *validator) settings(s *Settings) {
	if s.APIVersion != APIVersion {
		v.addf("apiVersion", "is %q; set apiVersion: %s", s.APIVersion, APIVersion)
	}
	if s.Kind != SettingsKind {
		v.addf("kind", "is %q; set kind: %s", s.Kind, SettingsKind)
	}
	v.pinnedImage("images.hook", s.Images.Hook)
	v.pinnedImage("images.ceph", s.Images.Ceph)
	v.hookPods(&s.HookPods)
	v.workloadKinds(s.WorkloadKinds)
	if len(s.Sites) < 2 {
		v.addf("sites", "lists %d site(s); mirroring needs at least two", len(s.Sites))
	}
	seen := map[string]int{}
	clusters := map[string]int{}
	monitors := map[string]int{}
	for i := range s.Sites {
		site := &s.Sites[i]
		at := fmt.Sprintf("sites[%d]", i)
		v.unique(at+".name", "site", site.Name, seen, i)
		if j, dup := clusters[site.Cluster]; dup && site.Cluster != "" {
			v.addf(at+".cluster", "%q is already sites[%d].cluster; each site is its own cluster, or one rendering would demote what the other promotes", site.Cluster, j)
		} else {
			clusters[site.Cluster] = i
		}
		if u, err := url.Parse(site.Cluster); err != nil || u.Scheme != "https" || u.Host == "" {
			v.addf(at+".cluster", "%q is not an API server URL; write it as https://host:port", site.Cluster)
		}
		if site.ClusterID == "" || strings.ContainsAny(site.ClusterID, " \t\n/") {
			v.addf(at+".clusterID", "%q is not a ceph-csi clusterID; give the one in ceph-csi's config (Rook: the CephCluster's namespace)", site.ClusterID)
		}
		if site.CSIDriver == "" {
			site.CSIDriver = DefaultCSIDriver
		}
		if errs := validation.IsDNS1123Subdomain(site.CSIDriver); len(errs) > 0 || len(site.CSIDriver) > 63 {
			v.addf(at+".csiDriver", "%q is not a CSI driver name (e.g. %s)", site.CSIDriver, DefaultCSIDriver)
		}
		v.dnsSubdomain(at+".nodeStageSecret.name", "Secret", site.NodeStageSecret.Name)
		v.dnsLabel(at+".nodeStageSecret.namespace", "namespace", site.NodeStageSecret.Namespace)
		if len(site.Monitors) == 0 {
			v.addf(at+".monitors", "is empty; list the Ceph monitors the hook Jobs connect to (host:port, e.g. Rook's mon Service addresses)")
		}
		for j, m := range site.Monitors {
			if host, port, err := net.SplitHostPort(m); err != nil || host == "" || port == "" || strings.ContainsAny(m, ", \t") {
				v.addf(fmt.Sprintf("%s.monitors[%d]", at, j), "%q is not host:port", m)
			}
			if k, dup := monitors[m]; dup && k != i {
				v.addf(fmt.Sprintf("%s.monitors[%d]", at, j), "%q is also a monitor of sites[%d]: each site is its own Ceph cluster, or a demote on one site would act on the other's images; give this site's own monitors", m, k)
			} else {
				monitors[m] = i
			}
		}
	}
	v.sharedCredentials(s)
	v.sharedPools(s)
	tenants := map[string]int{}
	for i := range s.Namespaces {
		t := &s.Namespaces[i]
		at := fmt.Sprintf("namespaces[%d]", i)
		if v.dnsLabel(at+".namespace", "namespace", t.Namespace) {
			v.unique(at+".namespace", "namespace", t.Namespace, tenants, i)
		}
		for j, site := range s.Sites {
			if t.Namespace != "" && t.Namespace == site.NodeStageSecret.Namespace {
				v.addf(at+".namespace", "%q is where sites[%d] (%s) keeps ceph-csi's node-stage Secret, the Ceph operator's namespace: an app there could read Ceph's own keys; give the app a namespace of its own", t.Namespace, j, site.Name)
				break
			}
		}
		v.dnsSubdomain(at+".project", "AppProject", t.Project)
		if len(t.Pools) == 0 {
			v.addf(at+".pools", "is empty; list the Ceph pools this namespace's apps may move")
		}
		for j, pool := range t.Pools {
			if !ValidCephName(pool) {
				v.addf(fmt.Sprintf("%s.pools[%d]", at, j), "%q is not a valid Ceph pool name", pool)
			}
		}
		v.radosNamespace(s, at, t)
		v.cephCredential(at+".cephUser", at+".cephSecret", t.CephUser, &t.CephSecret)
		t.Interval = v.rpo(at+".rpo", t.RPO)
		if r := t.PeerReader; r != nil {
			v.cephCredential(at+".peerReader.user", at+".peerReader.secret", r.User, &r.Secret)
			switch {
			case r.User == t.CephUser:
				v.addf(at+".peerReader.user", "%q is also cephUser: the peer reader must be a separate, read-only user (mon 'allow r', osd 'profile rbd-read-only pool=<pool>'); create one and name it here", r.User)
			case r.Secret == t.CephSecret:
				v.addf(at+".peerReader.secret", "is cephSecret's Secret and key (%s, key %s): the peer reader's key, made on the other site, needs a key of its own", r.Secret.Name, r.Secret.Key)
			}
		}
		// After peerReader's, whose Secret key is then filled in.
		if f := t.ForceUser; f != nil {
			v.cephCredential(at+".forceUser.user", at+".forceUser.secret", f.User, &f.Secret)
			switch {
			case f.User == t.CephUser:
				v.addf(at+".forceUser.user", "%q is also cephUser: the forced failover's user must be a separate one (mon 'profile rbd'), so that cephUser can go without it; create one and name it here", f.User)
			case f.Secret == t.CephSecret:
				v.addf(at+".forceUser.secret", "is cephSecret's Secret and key (%s, key %s): the forced failover's user needs a key of its own", f.Secret.Name, f.Secret.Key)
			case t.PeerReader != nil && (f.User == t.PeerReader.User || f.Secret == t.PeerReader.Secret):
				v.addf(at+".forceUser", "is the peer reader's user or Secret key: the forced failover's user is a writing user of this site, with a key of its own")
			}
		}
	}
}

// radosNamespace checks a namespace's RADOS namespace and the clusterIDs
// ceph-csi needs for it: one per site, and none without a RADOS namespace.
func (v *validator) radosNamespace(s *Settings, at string, t *TenantSetting) {
	if t.RadosNamespace == "" {
		if len(t.ClusterIDs) > 0 {
			v.addf(at+".clusterIDs", "is set without radosNamespace; a namespace without a RADOS namespace uses each site's clusterID: remove clusterIDs, or set radosNamespace")
		}
		return
	}
	if !ValidCephName(t.RadosNamespace) {
		v.addf(at+".radosNamespace", "%s is not a valid RADOS namespace name (letters, digits, '.', '_' and '-')", quote(t.RadosNamespace))
	}
	for _, site := range s.Sites {
		id, ok := t.ClusterIDs[site.Name]
		switch {
		case !ok:
			v.addf(at+".clusterIDs", "has no clusterID for site %s; give ceph-csi's clusterID of %s on it (Rook: the CephBlockPoolRadosNamespace's status.info.clusterID)", site.Name, t.RadosNamespace)
		case id == "" || strings.ContainsAny(id, " \t\n/"):
			v.addf(at+".clusterIDs."+site.Name, "%s is not a ceph-csi clusterID", quote(id))
		case id == site.ClusterID:
			v.addf(at+".clusterIDs."+site.Name, "%s is the site's own clusterID, whose images are outside any RADOS namespace; give the clusterID of %s (Rook: the CephBlockPoolRadosNamespace's status.info.clusterID)", quote(id), t.RadosNamespace)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(t.ClusterIDs)) {
		if _, ok := s.Site(name); !ok {
			v.addf(at+".clusterIDs."+name, "%s is not a site of these settings (%s)", quote(name), strings.Join(s.siteNames(), ", "))
		}
	}
}

// rpo reads a namespace's promised recovery point: a whole number of
// minutes, at least one, since that is what a mirror snapshot schedule can
// be (rbd mirror snapshot schedule add takes m, h or d).
func (v *validator) rpo(field, value string) time.Duration {
	d, err := time.ParseDuration(value)
	switch {
	case value == "":
		v.addf(field, "is missing; set the recovery point promised to this namespace's apps, the interval of the mirror snapshot schedule on both sites (e.g. rpo: 5m; see docs/operations.md#snapshot-schedules)")
	case err != nil:
		v.addf(field, "%s is not a duration; write it like 5m, 1h or 24h", quote(value))
	case d < MinRPO:
		v.addf(field, "%s is under %dm, the shortest interval of a mirror snapshot schedule; promise %[2]dm or more", quote(value), MinRPO/time.Minute)
	case d%time.Minute != 0:
		v.addf(field, "%s is not a whole number of minutes; a mirror snapshot schedule runs every so many minutes, hours or days", quote(value))
	default:
		return d
	}
	return 0
}

// sharedPools refuses a pool that two namespaces list, unless each has a
// RADOS namespace of its own in it, or sharedPools names the pool: a key
// with 'profile rbd pool=P' reaches every image in the pool, one with
// 'profile rbd pool=P namespace=N' only those in N.
func (v *validator) sharedPools(s *Settings) {
	for j, pool := range s.SharedPools {
		if !ValidCephName(pool) {
			v.addf(fmt.Sprintf("sharedPools[%d]", j), "%q is not a valid Ceph pool name", pool)
		}
	}
	owners := map[string][]int{}
	for i, t := range s.Namespaces {
		for j, pool := range t.Pools {
			for _, k := range owners[pool] {
				if k == i || slices.Contains(s.SharedPools, pool) {
					continue
				}
				other := s.Namespaces[k]
				field := fmt.Sprintf("namespaces[%d].pools[%d]", i, j)
				switch {
				case t.RadosNamespace == "" || other.RadosNamespace == "":
					v.addf(field, "%q is also a pool of namespaces[%d] (%s), and %s: a key with 'profile rbd pool=%s' reaches every image of the pool, so the two teams could read, write, demote and delete each other's images; give each namespace a radosNamespace of its own in the pool (or a pool of its own), or list %[1]q under sharedPools to accept that (docs/security.md)", pool, k, other.Namespace, unnamespaced(t, other), pool)
				case t.RadosNamespace == other.RadosNamespace:
					v.addf(fmt.Sprintf("namespaces[%d].radosNamespace", i), "%q is also namespaces[%d]'s (%s) RADOS namespace in pool %s: the two teams would reach each other's images; give each its own", t.RadosNamespace, k, other.Namespace, pool)
				default:
					continue
				}
				break
			}
			owners[pool] = append(owners[pool], i)
		}
	}
}

// unnamespaced says which of two namespaces that share a pool has no RADOS
// namespace.
func unnamespaced(a, b TenantSetting) string {
	switch {
	case a.RadosNamespace == "" && b.RadosNamespace == "":
		return "neither has a radosNamespace"
	case a.RadosNamespace == "":
		return "namespace " + a.Namespace + " has no radosNamespace"
	}
	return "namespace " + b.Namespace + " has no radosNamespace"
}

// sharedCredentials refuses a CephX user that two namespaces share: each
// namespace's key reaches its own pools and nothing else, so a writing user
// of one namespace must be no other namespace's writing user or peer reader
// (whose Secret sits in that other team's namespace), and a peer reader
// belongs to one namespace too.
func (v *validator) sharedCredentials(s *Settings) {
	type use struct {
		field string
		index int
	}
	users := map[string]use{}
	claim := func(field, user string, i int) {
		if user == "" {
			return
		}
		if u, dup := users[user]; dup && u.index != i {
			v.addf(field, "%s is already %s: each namespace needs CephX users of its own, or one team's key reaches the other's images; make a CephClient per namespace", quote(user), u.field)
			return
		}
		if _, dup := users[user]; !dup {
			users[user] = use{field, i}
		}
	}
	for i, t := range s.Namespaces {
		claim(fmt.Sprintf("namespaces[%d].cephUser", i), t.CephUser, i)
	}
	for i, t := range s.Namespaces {
		if t.ForceUser != nil {
			claim(fmt.Sprintf("namespaces[%d].forceUser.user", i), t.ForceUser.User, i)
		}
	}
	for i, t := range s.Namespaces {
		if t.PeerReader != nil {
			claim(fmt.Sprintf("namespaces[%d].peerReader.user", i), t.PeerReader.User, i)
		}
	}
}

// cephCredential checks a CephX user (a CephClient's name) and the Secret key
// that holds its key, which defaults to the user's name as in the Secret a
// Rook CephClient makes.
func (v *validator) cephCredential(userField, secretField, user string, secret *SecretKeyRef) {
	v.dnsSubdomain(secretField+".name", "Secret", secret.Name)
	switch {
	case !ValidCephName(user):
		v.addf(userField, "%s is not a CephX user name; give the CephClient's name, without client.", quote(user))
	case secret.Key == "":
		secret.Key = user
	}
	if errs := validation.IsConfigMapKey(secret.Key); secret.Key != "" && len(errs) > 0 {
		v.addf(secretField+".key", "%s is not a Secret key: %s", quote(secret.Key), errs[0])
	}
}

// pinnedImage accepts an image reference only with a digest.
func (v *validator) pinnedImage(field, ref string) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		v.addf(field, "%q is not an image reference: %v", ref, err)
		return
	}
	if _, ok := named.(reference.Digested); !ok {
		v.addf(field, "%q is not pinned by digest; write it as image@sha256:<digest> so that a moved tag cannot change what runs with Ceph credentials", ref)
	}
}

// unique records name at i in seen, or reports that it was already there.
func (v *validator) unique(field, what, name string, seen map[string]int, i int) {
	if j, dup := seen[name]; dup {
		v.addf(field, "%s %q is already listed at index %d; each must be unique", what, name, j)
		return
	}
	seen[name] = i
}

// dnsLabel checks a name that must be a DNS label (a namespace); it says
// whether the name was good.
func (v *validator) dnsLabel(field, what, name string) bool {
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		v.addf(field, "%s is not a %s name: %s", quote(name), what, errs[0])
		return false
	}
	return true
}

// dnsSubdomain checks a name that must be a DNS subdomain (most objects).
func (v *validator) dnsSubdomain(field, what, name string) bool {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		v.addf(field, "%s is not a %s name: %s", quote(name), what, errs[0])
		return false
	}
	return true
}

// Grant checks an app's policy against the settings for the app's namespace
// and returns what that namespace may do: every site must be one the
// platform knows, every volume in a pool the namespace may move.
func (s *Settings) Grant(p *Policy, namespace string) (TenantSetting, error) {
	t, err := s.Tenant(namespace)
	if err != nil {
		return t, err
	}
	var problems Problems
	for i, site := range p.Sites {
		if _, ok := s.Site(site.Name); !ok {
			problems = append(problems, p.Problem(fmt.Sprintf("sites[%d].name", i), "%s is not a site of the platform's settings (%s); use one of those names", quote(site.Name), strings.Join(s.siteNames(), ", ")))
		}
	}
	for i := range p.Volumes {
		p.Volumes[i].Namespace = t.RadosNamespace
	}
	for i, vol := range p.Volumes {
		if !t.Allows(vol.Pool) {
			problems = append(problems, p.Problem(fmt.Sprintf("volumes[%d].pool", i), "%q is not a pool that namespace %s may use (%s); ask the platform team, who own the pools", vol.Pool, namespace, strings.Join(t.Pools, ", ")))
		}
	}
	if len(problems) > 0 {
		return t, problems
	}
	return t, nil
}

func (s *Settings) siteNames() []string {
	names := make([]string, len(s.Sites))
	for i, site := range s.Sites {
		names[i] = site.Name
	}
	return names
}
