package api

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strings"
)

// openapiFS holds the ACS OpenAPI documents telgw implements (see openapi/README.md).
//
//go:embed openapi
var openapiFS embed.FS

// OpenAPIDoc is one document in the /openapi/ index.
type OpenAPIDoc struct {
	Area       string `json:"area"`
	APIVersion string `json:"apiVersion"`
	URL        string `json:"url"`
}

// openapiDocs lists the embedded documents (not Common/ nor examples/), by area and version.
func openapiDocs() []OpenAPIDoc {
	var docs []OpenAPIDoc
	_ = fs.WalkDir(openapiFS, "openapi", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".json" {
			return err
		}
		parts := strings.Split(strings.TrimPrefix(p, "openapi/"), "/")
		// Area/stable|preview/VERSION/file.json
		if len(parts) != 4 || parts[0] == "Common" {
			return nil
		}
		docs = append(docs, OpenAPIDoc{Area: parts[0], APIVersion: parts[2], URL: "/" + p})
		return nil
	})
	sort.Slice(docs, func(i, j int) bool {
		if docs[i].Area != docs[j].Area {
			return docs[i].Area < docs[j].Area
		}
		return docs[i].APIVersion < docs[j].APIVersion
	})
	return docs
}

var openapiIndex = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>telgw OpenAPI documents</title></head>
<body><h1>ACS OpenAPI documents telgw serves</h1>
<p>Swagger 2.0 files of Azure Communication Services (MIT, Microsoft), for the api-versions telgw implements.</p>
<ul>{{range .}}<li>{{.Area}} {{.APIVersion}}: <a href="{{.URL}}">{{.URL}}</a></li>
{{end}}</ul></body></html>
`))

// mountOpenAPI serves the documents at /openapi/ without authentication: they are ACS's own
// published contracts and say nothing about this deployment. GET /openapi/ is an index, JSON
// unless the client asks for HTML; directories are not listed.
func (s *Server) mountOpenAPI() {
	sub, _ := fs.Sub(openapiFS, "openapi")
	files := http.StripPrefix("/openapi/", http.FileServerFS(sub))
	docs := openapiDocs()
	s.router.Get("/openapi", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/openapi/", http.StatusMovedPermanently)
	})
	s.router.Get("/openapi/*", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/openapi/":
			w.Header().Set("Cache-Control", "no-cache")
			if strings.Contains(r.Header.Get("Accept"), "text/html") {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				_ = openapiIndex.Execute(w, docs)
				return
			}
			WriteJSON(w, http.StatusOK, map[string]any{"value": docs})
		case strings.HasSuffix(r.URL.Path, "/") || path.Ext(r.URL.Path) != ".json":
			http.NotFound(w, r)
		default:
			w.Header().Set("X-Content-Type-Options", "nosniff")
			files.ServeHTTP(w, r)
		}
	})
}
