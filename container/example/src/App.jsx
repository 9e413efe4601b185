import { useState } from 'react'
import './App.css'

// Edit this file through vsync (vsyncctl put example src/App.jsx FILE) while
// `npm run dev` runs on the mount: the page reloads with the new text.
const MESSAGE = 'Hello from a vsync mount'

export default function App() {
  const [count, setCount] = useState(0)

  return (
    <main className="app">
      <img src="/logo.png" className="logo" alt="vsync logo" width="64" height="64" />
      <h1>{MESSAGE}</h1>
      <p>
        This page is served by Vite from a directory that <code>vsync-mount</code> shows
        out of PostgreSQL.
      </p>
      <button type="button" onClick={() => setCount((c) => c + 1)}>
        clicked {count} {count === 1 ? 'time' : 'times'}
      </button>
    </main>
  )
}
