'use strict'
// A real Grenache client (grenache-nodejs-http + grenache-nodejs-link) placing orders on dex-node.
// Usage: node place_orders.js GRAPE_URL TRADER JSON_COMMANDS [compress]
// Looks up "dex:exchange" through the Grape, sends one request { action: "submit", trader, commands },
// prints {"ok": true, "result": ...} or {"ok": false, "error": "..."} as one JSON line, exits 0 / 1.
const Link = require('grenache-nodejs-link')
const { PeerRPCClient } = require('grenache-nodejs-http')

const [grape, trader, commandsJson, compress] = process.argv.slice(2)
const link = new Link({ grape, requestTimeout: 10000 })
link.start()
const peer = new PeerRPCClient(link, {})
peer.init()

const payload = { action: 'submit', trader, commands: JSON.parse(commandsJson) }
peer.request('dex:exchange', payload, { timeout: 20000, compress: compress === 'compress' }, (err, result) => {
  if (err) {
    console.log(JSON.stringify({ ok: false, error: err.message }))
  } else {
    console.log(JSON.stringify({ ok: true, result }))
  }
  peer.stop()
  link.stop()
  process.exit(err ? 1 : 0)
})
