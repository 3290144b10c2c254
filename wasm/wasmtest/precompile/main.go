// Command precompile fills a wazero compilation cache with the machine code of WebAssembly modules,
// as Postern's wasm runtime compiles them. wasmtest runs it without the race detector, under which
// wazero's compiler is about ten times slower.
//
//	precompile -cache DIR module.wasm...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"

	"postern.dev/postern/wasm"
)

func main() {
	dir := flag.String("cache", "", "compilation cache directory")
	flag.Parse()
	if *dir == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: precompile -cache DIR module.wasm...")
		os.Exit(2)
	}
	r, err := wasm.New(wasm.Config{
		CacheDir: *dir,
		Module:   func(string, string) ([]byte, error) { return nil, os.ErrNotExist },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, flag.NArg())
	for i, file := range flag.Args() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := os.ReadFile(file)
			if err == nil {
				err = r.Precompile(ctx, b)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	code := 0
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", flag.Arg(i), err)
			code = 1
		}
	}
	if err := r.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}
