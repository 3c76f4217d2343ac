package envoy_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/agentos-authz/agentos-authz/envoy"
)

func ExampleNewHTTPHandler() {
	h := envoy.NewHTTPHandler(headerDecider{}, envoy.HTTPOptions{})

	// nginx auth_request: the checked request is named by X-Original-*.
	r := httptest.NewRequest("GET", "/_authz", nil)
	r.Header.Set("X-Original-URI", "/agents?limit=5")
	r.Header.Set("X-Original-Method", "GET")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("Content-Type"), w.Header().Get("Www-Authenticate"), w.Body)

	r.Header.Set("Authorization", "Bearer t")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code, w.Header().Get("X-Agentos-Auth"))
	// Output:
	// 401 application/json Bearer {"detail": "Authorization header missing"}
	// 200 jwt
}
