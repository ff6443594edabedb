package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/sigv4"
	"golang.org/x/oauth2/google"
	"google.golang.org/api/option"
	apihttp "google.golang.org/api/transport/http"
)

// This file adds the cloud providers' request signing that a remote_write
// entry may ask for on top of prometheus/common's HTTP client: sigv4 (AWS),
// azuread (Microsoft Entra ID) and google_iam. Prometheus's configuration
// accepts at most one of them, and none with basic_auth, authorization or
// oauth2.

// withCloudAuth wraps rt with the signing cfg asks for, if any. authority
// is nil but in tests (see azureAuthority).
func withCloudAuth(cfg *config.RemoteWriteConfig, rt http.RoundTripper, authority *azureAuthority) (http.RoundTripper, error) {
	switch {
	case cfg.SigV4Config != nil:
		signed, err := sigv4.NewSigV4RoundTripper(cfg.SigV4Config, rt)
		if err != nil {
			return nil, fmt.Errorf("sigv4: %w", err)
		}
		return signed, nil
	case cfg.AzureADConfig != nil:
		return azureADRoundTripper(cfg, rt, authority)
	case cfg.GoogleIAMConfig != nil:
		return googleIAMRoundTripper(cfg.GoogleIAMConfig.CredentialsFile, rt)
	}
	return rt, nil
}

// googleMonitoringWriteScope is the OAuth scope Google Cloud Managed
// Service for Prometheus wants for writes.
const googleMonitoringWriteScope = "https://www.googleapis.com/auth/monitoring.write"

// googleIAMRoundTripper authorizes requests with Google credentials: those
// of the service-account key file credentialsFile, or the environment's
// default credentials when it is empty.
func googleIAMRoundTripper(credentialsFile string, rt http.RoundTripper) (http.RoundTripper, error) {
	ctx := context.Background()
	opts := []option.ClientOption{option.WithScopes(googleMonitoringWriteScope)}
	if credentialsFile != "" {
		opts = append(opts, option.WithAuthCredentialsFile(option.ServiceAccount, credentialsFile))
	} else {
		creds, err := google.FindDefaultCredentials(ctx, googleMonitoringWriteScope)
		if err != nil {
			return nil, fmt.Errorf("google_iam: no default Google credentials: %w", err)
		}
		opts = append(opts, option.WithCredentials(creds))
	}
	authorized, err := apihttp.NewTransport(ctx, rt, opts...)
	if err != nil {
		return nil, fmt.Errorf("google_iam: %w", err)
	}
	return authorized, nil
}

// Azure clouds as the azuread section names them, with the audience of
// Azure Monitor ingestion in each.
var azureClouds = map[string]struct {
	cloud    cloud.Configuration
	audience string
}{
	"AzurePublic":     {cloud.AzurePublic, "https://monitor.azure.com//.default"},
	"AzureChina":      {cloud.AzureChina, "https://monitor.azure.cn//.default"},
	"AzureGovernment": {cloud.AzureGovernment, "https://monitor.azure.us//.default"},
}

// azureAuthority points Entra ID logins at another server than the
// cloud's: host replaces the cloud's authority host, client carries the
// requests, and instance discovery (a request to Microsoft's own host) is
// skipped. Only tests set one (ClientOptions.azureAuthority), for a local
// TLS server that client trusts.
type azureAuthority struct {
	host   string
	client *http.Client
}

// azureTokenFileEnv names the file the Azure workload identity webhook
// projects the service account token to; defaultAzureTokenFile is used when
// it is unset.
const (
	azureTokenFileEnv     = "AZURE_FEDERATED_TOKEN_FILE"
	defaultAzureTokenFile = "/var/run/secrets/azure/tokens/azure-identity-token"
)

// azureADRoundTripper authorizes requests with a Microsoft Entra ID access
// token from the credential the azuread section describes: a managed
// identity, a workload identity, an application secret (oauth), a
// certificate, or the SDK's default chain. authority, when not nil, is
// where logins go instead of the cloud's authority host.
func azureADRoundTripper(cfg *config.RemoteWriteConfig, rt http.RoundTripper, authority *azureAuthority) (http.RoundTripper, error) {
	ad := cfg.AzureADConfig
	cloudName := ad.Cloud
	if cloudName == "" {
		cloudName = "AzurePublic"
	}
	c, ok := azureClouds[cloudName]
	if !ok {
		return nil, fmt.Errorf("azuread: unknown cloud %q (AzurePublic, AzureChina or AzureGovernment)", cloudName)
	}
	scope := c.audience
	if ad.Scope != "" {
		scope = ad.Scope
	}
	co := azcore.ClientOptions{Cloud: c.cloud}
	noDiscovery := false
	if authority != nil {
		co.Cloud.ActiveDirectoryAuthorityHost, co.Transport, noDiscovery = authority.host, authority.client, true
	}

	var (
		cred azcore.TokenCredential
		err  error
	)
	switch {
	case ad.ManagedIdentity != nil:
		opts := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: co}
		if id := ad.ManagedIdentity.ClientID; id != "" {
			opts.ID = azidentity.ClientID(id)
		}
		cred, err = azidentity.NewManagedIdentityCredential(opts)
	case ad.WorkloadIdentity != nil:
		w := ad.WorkloadIdentity
		tokenFile := w.TokenFilePath
		if tokenFile == "" {
			tokenFile = os.Getenv(azureTokenFileEnv)
		}
		if tokenFile == "" {
			tokenFile = defaultAzureTokenFile
		}
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: co, ClientID: w.ClientID, TenantID: w.TenantID, TokenFilePath: tokenFile,
			DisableInstanceDiscovery: noDiscovery,
		})
	case ad.OAuth != nil:
		o := ad.OAuth
		cred, err = azidentity.NewClientSecretCredential(o.TenantID, o.ClientID, string(o.ClientSecret),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: noDiscovery})
	case ad.Certificate != nil:
		cc := ad.Certificate
		var pem []byte
		if pem, err = os.ReadFile(cc.CertificatePath); err != nil {
			break
		}
		if cc.CertificateKeyPath != "" {
			var key []byte
			if key, err = os.ReadFile(cc.CertificateKeyPath); err != nil {
				break
			}
			pem = append(append(pem, '\n'), key...)
		}
		certs, key, perr := azidentity.ParseCertificates(pem, []byte(cc.CertificatePassword))
		if perr != nil {
			err = perr
			break
		}
		cred, err = azidentity.NewClientCertificateCredential(cc.TenantID, cc.ClientID, certs, key,
			&azidentity.ClientCertificateCredentialOptions{ClientOptions: co, SendCertificateChain: cc.SendCertificateChain,
				DisableInstanceDiscovery: noDiscovery})
	case ad.SDK != nil:
		cred, err = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co, TenantID: ad.SDK.TenantID})
	default:
		err = errors.New("no credential: set one of managed_identity, workload_identity, oauth, certificate or sdk")
	}
	if err != nil {
		return nil, fmt.Errorf("azuread: %w", err)
	}
	return &bearerRoundTripper{next: rt, tokens: &tokenCache{cred: cred, scope: scope}}, nil
}

// tokenCache hands out an access token of its credential for its scope,
// fetching a new one when the current one is near its end.
type tokenCache struct {
	cred  azcore.TokenCredential
	scope string

	mu      sync.Mutex
	token   string
	refresh time.Time // when to fetch a new token
}

// tokenRefreshMargin is how long before a token expires a new one is
// fetched, when the credential suggests no refresh time of its own.
const tokenRefreshMargin = 5 * time.Minute

func (c *tokenCache) get(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Now().Before(c.refresh) {
		return c.token, nil
	}
	t, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{c.scope}})
	if err != nil {
		return "", err
	}
	c.token = t.Token
	c.refresh = t.ExpiresOn.Add(-tokenRefreshMargin)
	if !t.RefreshOn.IsZero() {
		c.refresh = t.RefreshOn
	}
	return c.token, nil
}

// bearerRoundTripper sets an Authorization: Bearer header from its tokens
// on a copy of each request.
type bearerRoundTripper struct {
	next   http.RoundTripper
	tokens *tokenCache
}

func (rt *bearerRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	token, err := rt.tokens.get(req.Context())
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close() // a RoundTripper closes the body, even on error
		}
		return nil, fmt.Errorf("azuread: getting an access token: %w", err)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	return rt.next.RoundTrip(req)
}
