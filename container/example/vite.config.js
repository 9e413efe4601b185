import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// package.json has no "type": "module" on purpose: Vite 5 then compiles this
// file in memory (printing a notice that its CJS API is deprecated) instead
// of writing vite.config.js.timestamp-*.mjs next to it, which the vsync mount
// refuses (EROFS) while synced paths are read-only.
//
// The preview container publishes whatever port PORT names; listen on all
// interfaces so the container's port mapping reaches the dev server.
const port = Number(process.env.PORT) || 5173

export default defineConfig({
  plugins: [react()],
  server: {
    host: '0.0.0.0',
    port,
    strictPort: true,
  },
  preview: {
    host: '0.0.0.0',
    port,
    strictPort: true,
  },
})
