// Command device-cli signs in with the device authorization grant (RFC
// 8628), as a command-line tool would, and prints whom the token is for.
//
//	go run ./examples/device-cli -issuer http://localhost:8080 -client-id ID
//
// It reads the endpoints from the server's metadata, asks for a device
// code, tells the user where to enter the user code, polls the token
// endpoint with golang.org/x/oauth2 (DeviceAuth, DeviceAccessToken) and
// prints the token's subject from the userinfo endpoint. The client is a
// public one, added with
//
//	client add -public -grant-type urn:ietf:params:oauth:grant-type:device_code -grant-type refresh_token
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// metadata is what the CLI needs of the server's metadata (RFC 8414).
type metadata struct {
	Issuer              string `json:"issuer"`
	DeviceAuthorization string `json:"device_authorization_endpoint"`
	Token               string `json:"token_endpoint"`
	UserInfo            string `json:"userinfo_endpoint"`
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("device-cli", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", "http://localhost:8080", "the authorization server's issuer URL")
	clientID := fs.String("client-id", "", "the public client's id (required)")
	scope := fs.String("scope", "openid", "space-separated scopes to ask for (openid lets the CLI read the subject)")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the user")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *clientID == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: device-cli -issuer URL -client-id ID [-scope SCOPES] [-timeout D]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	// Every request of the flow is bounded; the polling is bounded by ctx.
	hc := &http.Client{Timeout: 15 * time.Second}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)

	md, err := discover(ctx, hc, *issuer)
	if err != nil {
		fmt.Fprintln(stderr, "error:", err)
		return 1
	}
	conf := &oauth2.Config{ClientID: *clientID, Scopes: strings.Fields(*scope), Endpoint: oauth2.Endpoint{
		DeviceAuthURL: md.DeviceAuthorization, TokenURL: md.Token, AuthStyle: oauth2.AuthStyleInParams}}
	da, err := conf.DeviceAuth(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "error: asking for a device code:", err)
		return 1
	}
	fmt.Fprintf(stdout, "To sign in, open %s and enter the code %s\n", da.VerificationURI, da.UserCode)
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(stdout, "(or open %s)\n", da.VerificationURIComplete)
	}
	tok, err := conf.DeviceAccessToken(ctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode != "" {
			fmt.Fprintf(stderr, "error: not signed in: %s\n", re.ErrorCode)
		} else {
			fmt.Fprintln(stderr, "error: not signed in:", err)
		}
		return 1
	}
	sub, err := subject(ctx, hc, md.UserInfo, tok)
	if err != nil {
		fmt.Fprintln(stderr, "error: reading the subject:", err)
		return 1
	}
	fmt.Fprintf(stdout, "signed in as %s\n", sub)
	return 0
}

// discover reads the metadata of issuer and checks it names itself.
func discover(ctx context.Context, hc *http.Client, issuer string) (*metadata, error) {
	issuer = strings.TrimSuffix(issuer, "/")
	var md metadata
	if err := getJSON(ctx, hc, issuer+"/.well-known/oauth-authorization-server", "", &md); err != nil {
		return nil, fmt.Errorf("reading the server's metadata: %w", err)
	}
	switch {
	case md.Issuer != issuer:
		return nil, fmt.Errorf("the metadata names issuer %q, not %q", md.Issuer, issuer)
	case md.DeviceAuthorization == "" || md.Token == "":
		return nil, errors.New("the server does not offer the device authorization grant")
	}
	return &md, nil
}

// subject asks the userinfo endpoint whom the token is for.
func subject(ctx context.Context, hc *http.Client, endpoint string, tok *oauth2.Token) (string, error) {
	if endpoint == "" {
		return "", errors.New("the server has no userinfo endpoint (is OpenID Connect on?)")
	}
	var ui struct {
		Sub string `json:"sub"`
	}
	if err := getJSON(ctx, hc, endpoint, tok.AccessToken, &ui); err != nil {
		return "", err
	}
	if ui.Sub == "" {
		return "", errors.New("userinfo has no sub")
	}
	return ui.Sub, nil
}

func getJSON(ctx context.Context, hc *http.Client, u, bearer string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", u, res.StatusCode)
	}
	return json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(into)
}
