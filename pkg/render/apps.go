package render

import (
	"bytes"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/rbd-dr/argocd-rbd-dr/pkg/cmpenv"
	"github.com/rbd-dr/argocd-rbd-dr/pkg/config"
)

// AppsOptions say where the parent Application found the app folder: each
// site's Application renders the same source.
type AppsOptions struct {
	RepoURL        string
	TargetRevision string
	// Path is the app folder in the repository (ARGOCD_APP_SOURCE_PATH).
	Path string
	// Namespace is where the parent puts its output: Argo CD's namespace.
	Namespace string
	// Settings give each site's cluster and the namespace's AppProject.
	Settings *config.Settings
}

// Waves of the Applications: every passive site syncs (and so demotes)
// before the active one promotes.
const (
	wavePassiveApps = 0
	waveActiveApp   = 1
)

// AppWave is the sync wave of a site's Application in the app-of-apps.
func AppWave(p *config.Policy, site string) int {
	if p.IsActive(site) {
		return waveActiveApp
	}
	return wavePassiveApps
}

// application is the part of Argo CD's v1alpha1.Application we write. The
// shipped binary keeps Argo CD's own packages out (the start-up budget in
// docs/architecture.md); tests decode these strictly into the real type.
type application struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Metadata   appMeta `json:"metadata"`
	Spec       appSpec `json:"spec"`
}

type appMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type appSpec struct {
	Project     string         `json:"project"`
	Source      appSource      `json:"source"`
	Destination appDestination `json:"destination"`
	SyncPolicy  appSyncPolicy  `json:"syncPolicy"`
}

type appSource struct {
	RepoURL        string    `json:"repoURL"`
	Path           string    `json:"path"`
	TargetRevision string    `json:"targetRevision,omitempty"`
	Plugin         appPlugin `json:"plugin"`
}

type appPlugin struct {
	Name string   `json:"name"`
	Env  []appEnv `json:"env"`
}

type appEnv struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type appDestination struct {
	Server    string `json:"server"`
	Namespace string `json:"namespace"`
}

type appSyncPolicy struct {
	Automated   appAutomated `json:"automated"`
	SyncOptions []string     `json:"syncOptions,omitempty"`
	Retry       appRetry     `json:"retry"`
}

type appAutomated struct {
	Prune    bool `json:"prune"`
	SelfHeal bool `json:"selfHeal"`
}

type appRetry struct {
	Limit   int64      `json:"limit"`
	Backoff appBackoff `json:"backoff"`
}

type appBackoff struct {
	Duration    string `json:"duration"`
	Factor      int64  `json:"factor"`
	MaxDuration string `json:"maxDuration"`
}

// Apps renders the app-of-apps: one Application per site, named
// <name>-<site>, each rendering this folder through the plugin with its own
// SITE, passive sites in an earlier sync wave than the active one. The
// clusters and the AppProject are the platform's settings', never the
// team's file's.
func Apps(p *config.Policy, o AppsOptions) ([]byte, error) {
	if o.RepoURL == "" || o.Path == "" {
		return nil, fmt.Errorf("the app-of-apps needs the parent's source: ARGOCD_APP_SOURCE_REPO_URL and ARGOCD_APP_SOURCE_PATH are not set")
	}
	if o.Settings == nil {
		return nil, config.NoSettingsError()
	}
	tenant, err := o.Settings.Grant(p, p.Apps.Namespace)
	if err != nil {
		return nil, err
	}
	var apps []Object
	for _, site := range p.Sites {
		cluster, _ := o.Settings.Site(site.Name) // Grant checked every site
		name := p.Name + "-" + site.Name
		// Argo CD puts the Application's name in a label of everything it
		// deploys, and a label value holds at most 63 characters.
		if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
			return nil, fmt.Errorf("%s: the Application for site %s would be named %q, which is not a DNS label of at most 63 characters (Argo CD labels every object with it): %s; shorten name: or the site's name", p.File, site.Name, name, errs[0])
		}
		wave := AppWave(p, site.Name)
		app := application{
			APIVersion: "argoproj.io/v1alpha1",
			Kind:       "Application",
			Metadata: appMeta{
				Name:        name,
				Namespace:   o.Namespace,
				Labels:      map[string]string{managedByLabel: managedBy, appLabel: p.Name, siteLabel: site.Name},
				Annotations: map[string]string{WaveAnnotation: strconv.Itoa(wave)},
			},
			Spec: appSpec{
				Project: tenant.Project,
				Source: appSource{
					RepoURL: o.RepoURL, Path: o.Path, TargetRevision: o.TargetRevision,
					Plugin: appPlugin{Name: cmpenv.PluginName, Env: []appEnv{{Name: cmpenv.Site.Env(), Value: site.Name}}},
				},
				Destination: appDestination{Server: cluster.Cluster, Namespace: p.Apps.Namespace},
				SyncPolicy: appSyncPolicy{
					Automated: appAutomated{Prune: *p.Apps.Prune, SelfHeal: *p.Apps.SelfHeal},
					// ApplyOutOfSyncOnly: a move changes the workloads' replicas,
					// not the volumes; Argo CD applies what changed and skips the
					// volumes' wave (claimwave.go) when nothing in it did.
					SyncOptions: []string{"CreateNamespace=true", "ApplyOutOfSyncOnly=true"},
					Retry: appRetry{Limit: *p.Apps.Retry.Limit, Backoff: appBackoff{
						Duration: p.Apps.Retry.Backoff, Factor: *p.Apps.Retry.Factor, MaxDuration: p.Apps.Retry.MaxDuration,
					}},
				},
			},
		}
		obj, err := toObject(app)
		if err != nil {
			return nil, err
		}
		apps = append(apps, obj)
	}
	var out bytes.Buffer
	if err := writeDocs(&out, apps); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
