import { useState, type FormEvent } from "react";

export function SignIn({ busy, error, onSubmit }: { busy: boolean; error: string | null; onSubmit: (key: string) => void }) {
  const [value, setValue] = useState("");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (value.trim()) onSubmit(value.trim());
  };
  return (
    <main className="signin">
      <form onSubmit={submit} aria-describedby="signin-help">
        <h1>Threadline</h1>
        <p id="signin-help">
          Sign in with your API key. It stays in this browser. Running <code>npm run dev</code>? It printed a demo key and a link that signs you in.
        </p>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" spellCheck={false} placeholder="tl_…" value={value} onChange={(e) => setValue(e.target.value)} autoFocus />
        {error && (
          <p role="alert" className="form-error">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy || !value.trim()}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
