package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The module's shape, guarded here beside its dependencies: no function
// longer than maxFuncLines and no type with more than maxMethods methods
// in the product's code. Tests, test helpers (packages named *test or
// testkit) and the lab (cmd/duetlab, app/lab) may be longer.
const (
	maxFuncLines = 80
	maxMethods   = 25
)

// TestShape reads every Go file of the module outside tests and the lab.
func TestShape(t *testing.T) {
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	methods := map[string]int{} // "dir.Type" → methods
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if exempt(rel, d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := fn.Name.Name
			if fn.Recv != nil {
				recv := receiver(fn.Recv.List[0].Type)
				methods[filepath.Dir(rel)+"."+recv]++
				name = recv + "." + name
			}
			if n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1; n > maxFuncLines {
				t.Errorf("%s: %s is %d lines long, more than %d", rel, name, n, maxFuncLines)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(methods) < 100 {
		t.Fatalf("only %d types with methods found under %s: is the walk reading the module?", len(methods), root)
	}
	for typ, n := range methods {
		if n > maxMethods {
			t.Errorf("%s has %d methods, more than %d", typ, n, maxMethods)
		}
	}
}

// exempt reports whether the folder rel (named name) is outside the
// product: the lab, test helpers, hidden folders and test data.
func exempt(rel, name string) bool {
	switch {
	case rel == filepath.Join("cmd", "duetlab"), rel == filepath.Join("app", "lab"):
		return true
	case strings.HasSuffix(name, "test") || name == "testkit" || name == "testdata":
		return true
	case strings.HasPrefix(name, ".") && rel != ".":
		return true
	}
	return false
}

// receiver names a method's receiver type, without pointer or type
// parameters.
func receiver(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return receiver(x.X)
	case *ast.IndexExpr:
		return receiver(x.X)
	case *ast.IndexListExpr:
		return receiver(x.X)
	case *ast.Ident:
		return x.Name
	}
	return "?"
}

// TestReadmeListsEveryPackage keeps README's table of packages whole: a
// newcomer reads it before the code.
func TestReadmeListsEveryPackage(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/duetapp/duet/"
	out, err := exec.Command("go", "list", mod+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 40 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, pkg := range pkgs {
		if rel := strings.TrimPrefix(pkg, mod); !strings.Contains(string(readme), "`"+rel+"`") {
			t.Errorf("README's package table does not name %s", rel)
		}
	}
}
