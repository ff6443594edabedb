package remote

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/prometheus/storage/remote/azuread"
	"github.com/prometheus/prometheus/storage/remote/googleiam"
	"github.com/prometheus/sigv4"
	"github.com/stretchr/testify/require"

	"github.com/walship/walship/queue"
)

// authReceiver records the Authorization header and body of each request.
type authReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	auth   []string
	bodies [][]byte
}

func newAuthReceiver(t *testing.T) *authReceiver {
	r := &authReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *authReceiver) seen() ([]string, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.auth...), append([][]byte(nil), r.bodies...)
}

// sendOne sends a small RW1 body through c and fails the test on error.
func sendOne(t *testing.T, c *Client, body string) {
	t.Helper()
	_, err := c.Send(context.Background(), &queue.Request{Protocol: queue.RW1, Body: []byte(body), Samples: 1}, 0)
	require.NoError(t, err)
}

// TestClientSigV4 signs requests with static AWS keys: the receiver sees
// an AWS4-HMAC-SHA256 authorization for the configured key, region and
// the default service (aps), and the body unchanged.
func TestClientSigV4(t *testing.T) {
	r := newAuthReceiver(t)
	cfg := testConfig(t, r.URL)
	cfg.SigV4Config = &sigv4.SigV4Config{Region: "eu-west-1", AccessKey: "AKIDWALSHIP", SecretKey: "not-a-secret"}
	c := newTestClient(t, cfg, ClientOptions{})
	sendOne(t, c, "body-1")

	auth, bodies := r.seen()
	require.Len(t, auth, 1)
	require.True(t, strings.HasPrefix(auth[0], "AWS4-HMAC-SHA256 Credential=AKIDWALSHIP/"), auth[0])
	require.Contains(t, auth[0], "/eu-west-1/aps/aws4_request")
	require.Contains(t, auth[0], "Signature=")
	require.Equal(t, "body-1", string(bodies[0]))
}

// TestClientGoogleIAM authorizes requests with a service account key
// whose token endpoint is a local server: the receiver sees a bearer token.
func TestClientGoogleIAM(t *testing.T) {
	var exchanged atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		exchanged.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"google-token","token_type":"Bearer","expires_in":3600}`)
	}))
	t.Cleanup(tokens.Close)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	account, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "walship-test", "private_key_id": "k1",
		"private_key": string(keyPEM), "client_email": "writer@walship-test.iam.gserviceaccount.com",
		"client_id": "1", "token_uri": tokens.URL,
	})
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "sa.json")
	require.NoError(t, os.WriteFile(file, account, 0o600))

	r := newAuthReceiver(t)
	cfg := testConfig(t, r.URL)
	cfg.GoogleIAMConfig = &googleiam.Config{CredentialsFile: file}
	c := newTestClient(t, cfg, ClientOptions{})
	sendOne(t, c, "body-1")
	sendOne(t, c, "body-2")

	auth, bodies := r.seen()
	require.Len(t, auth, 2)
	for _, a := range auth {
		require.True(t, strings.HasPrefix(a, "Bearer ") && len(a) > len("Bearer "), a)
	}
	if exchanged.Load() > 0 { // a token exchange, not a self-signed JWT
		require.Equal(t, "Bearer google-token", auth[0])
		require.EqualValues(t, 1, exchanged.Load(), "the token is reused")
	}
	require.Equal(t, "body-2", string(bodies[1]))
}

// TestClientAzureADManagedIdentity gets tokens for a managed identity from
// a local endpoint speaking the App Service identity protocol
// (IDENTITY_ENDPOINT, IDENTITY_HEADER): the receiver sees the token, and
// the second request reuses it.
func TestClientAzureADManagedIdentity(t *testing.T) {
	var asked atomic.Int32
	var resource atomic.Value
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		asked.Add(1)
		resource.Store(req.URL.Query().Get("resource"))
		if req.Header.Get("X-IDENTITY-HEADER") != "walship-secret" {
			http.Error(w, "no identity header", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"azure-token","expires_on":"%d","resource":%q,"token_type":"Bearer"}`,
			time.Now().Add(time.Hour).Unix(), req.URL.Query().Get("resource"))
	}))
	t.Cleanup(tokens.Close)
	t.Setenv("IDENTITY_ENDPOINT", tokens.URL)
	t.Setenv("IDENTITY_HEADER", "walship-secret")

	r := newAuthReceiver(t)
	cfg := testConfig(t, r.URL)
	// A client id of its own per run: the Azure library caches managed
	// identity tokens for the process, by client id and resource.
	clientID := fmt.Sprintf("00000000-0000-0000-0000-%012d", time.Now().UnixNano()%1e12)
	cfg.AzureADConfig = &azuread.AzureADConfig{ManagedIdentity: &azuread.ManagedIdentityConfig{ClientID: clientID}, Cloud: "AzurePublic"}
	c := newTestClient(t, cfg, ClientOptions{})
	sendOne(t, c, "body-1")
	sendOne(t, c, "body-2")

	auth, _ := r.seen()
	require.Equal(t, []string{"Bearer azure-token", "Bearer azure-token"}, auth)
	require.EqualValues(t, 1, asked.Load(), "the token is reused until it nears its end")
	require.Equal(t, "https://monitor.azure.com/", resource.Load(), "Azure Monitor's audience in the public cloud")
}

// TestClientAzureADRejectsUnknownCloud: a cloud the azuread section does
// not know is a configuration error, not a request failure.
func TestClientAzureADRejectsUnknownCloud(t *testing.T) {
	cfg := testConfig(t, "http://127.0.0.1:9/")
	cfg.AzureADConfig = &azuread.AzureADConfig{OAuth: &azuread.OAuthConfig{ClientID: "c", ClientSecret: "s", TenantID: "t"}, Cloud: "AzureMoon"}
	_, err := NewClient("test", cfg, ClientOptions{})
	require.ErrorContains(t, err, `unknown cloud "AzureMoon"`)
}

// TestClientRoundRobinDNS: with round_robin_dns the client dials through
// its own resolver and still reaches the endpoint.
func TestClientRoundRobinDNS(t *testing.T) {
	r := newAuthReceiver(t)
	cfg := testConfig(t, r.URL)
	cfg.RoundRobinDNS = true
	c := newTestClient(t, cfg, ClientOptions{})
	sendOne(t, c, "body-1")
	_, bodies := r.seen()
	require.Equal(t, []string{"body-1"}, func() []string {
		out := make([]string, len(bodies))
		for i, b := range bodies {
			out[i] = string(b)
		}
		return out
	}())
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// entraID is a local Microsoft Entra ID for one tenant: it serves the
// tenant's OpenID configuration and its token endpoint over TLS, and
// records the form of each token request.
type entraID struct {
	*httptest.Server
	mu    sync.Mutex
	forms []map[string]string
}

func newEntraID(t *testing.T, tenant string) *entraID {
	e := &entraID{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+tenant+"/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		base := e.URL + "/" + tenant
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{
			"token_endpoint":         base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer":                 base + "/v2.0",
		})
	})
	mux.HandleFunc("POST /"+tenant+"/oauth2/v2.0/token", func(w http.ResponseWriter, req *http.Request) {
		if err := req.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form := map[string]string{}
		for k := range req.PostForm {
			form[k] = req.PostForm.Get(k)
		}
		e.mu.Lock()
		e.forms = append(e.forms, form)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":"entra-token"}`)
	})
	e.Server = httptest.NewTLSServer(mux)
	t.Cleanup(e.Close)
	return e
}

// clientOptions are the options of a Client whose azuread logins go to e.
func (e *entraID) clientOptions() ClientOptions {
	return ClientOptions{azureAuthority: &azureAuthority{host: e.URL + "/", client: e.Client()}}
}

func (e *entraID) tokenRequests() []map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]map[string]string(nil), e.forms...)
}

// TestClientAzureADApplications gets tokens for an application from a
// local Entra ID with each credential the azuread section offers besides
// managed identity: a client secret (oauth), a certificate, and a
// Kubernetes workload identity (a federated token file). The token request
// names the client and Azure Monitor's scope in the configured cloud, the
// receiver sees the token, and the second request reuses it.
func TestClientAzureADApplications(t *testing.T) {
	const tenant = "00000000-0000-0000-0000-00000000aaaa"
	dir := t.TempDir()

	// A self-signed certificate with its key, in one PEM file.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "walship-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	certPath := filepath.Join(dir, "app.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	require.NoError(t, os.WriteFile(certPath, append(certPEM, keyPEM...), 0o600))

	tokenFile := filepath.Join(dir, "federated-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("kubernetes-service-account-token"), 0o600))

	cases := []struct {
		name   string
		cloud  string
		config func(clientID string) *azuread.AzureADConfig
		scope  string
		check  func(t *testing.T, form map[string]string)
	}{
		{"oauth client secret", "AzurePublic", func(id string) *azuread.AzureADConfig {
			return &azuread.AzureADConfig{OAuth: &azuread.OAuthConfig{ClientID: id, ClientSecret: "app-secret", TenantID: tenant}}
		}, "https://monitor.azure.com//.default", func(t *testing.T, form map[string]string) {
			require.Equal(t, "app-secret", form["client_secret"])
		}},
		{"certificate", "AzureChina", func(id string) *azuread.AzureADConfig {
			return &azuread.AzureADConfig{Certificate: &azuread.CertificateConfig{ClientID: id, TenantID: tenant, CertificatePath: certPath}}
		}, "https://monitor.azure.cn//.default", func(t *testing.T, form map[string]string) {
			require.Equal(t, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer", form["client_assertion_type"])
			require.NotEmpty(t, form["client_assertion"], "a JWT signed with the certificate's key")
		}},
		{"workload identity", "AzureGovernment", func(id string) *azuread.AzureADConfig {
			return &azuread.AzureADConfig{WorkloadIdentity: &azuread.WorkloadIdentityConfig{ClientID: id, TenantID: tenant, TokenFilePath: tokenFile}}
		}, "https://monitor.azure.us//.default", func(t *testing.T, form map[string]string) {
			require.Equal(t, "kubernetes-service-account-token", form["client_assertion"], "the federated token, as read from the file")
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			entra := newEntraID(t, tenant)
			r := newAuthReceiver(t)
			cfg := testConfig(t, r.URL)
			clientID := fmt.Sprintf("00000000-0000-0000-0000-%012d", i+1)
			cfg.AzureADConfig = c.config(clientID)
			cfg.AzureADConfig.Cloud = c.cloud
			cl := newTestClient(t, cfg, entra.clientOptions())
			sendOne(t, cl, "body-1")
			sendOne(t, cl, "body-2")

			auth, _ := r.seen()
			require.Equal(t, []string{"Bearer entra-token", "Bearer entra-token"}, auth)
			forms := entra.tokenRequests()
			require.Len(t, forms, 1, "the token is reused until it nears its end")
			require.Equal(t, clientID, forms[0]["client_id"])
			require.Equal(t, "client_credentials", forms[0]["grant_type"])
			// MSAL adds its OpenID scopes to the one asked for.
			require.Contains(t, strings.Fields(forms[0]["scope"]), c.scope)
			c.check(t, forms[0])
		})
	}
}
