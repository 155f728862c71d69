// jspurefix (an independent FIX engine) as the initiator against dex-fix: tests/fix/test_fix_interop.py runs it.
//
// node initiator.js <phase> <port> <sender> [<LastSentSeqNum> <LastReceivedSeqNum>]
//   trade:   logon (ResetSeqNumFlag=Y), buy 0.2 BTC-USD @ 30000 against the resting sell the test placed (a fill),
//            sell 0.3 @ 31000 (rests), replace it (0.4 @ 31500), cancel it, logout.
//   recover: logon without a reset (ResetSeqNumFlag=N), jspurefix's numbers seeded from the arguments (its documented
//            LastSentSeqNum / LastReceivedSeqNum), so each side may find a gap and ask the other to resend;
//            once the session is in sequence, place one order, logout.
//   signed:  node initiator.js signed <port> <sender> <store> <credential.json>: the Logon proves the dex-keys key
//            (docs/security.md "FIX": Username 553 = key id, RawData 96 = Ed25519 signature over SendingTime as ms,
//            window 5000, "A", "<MsgSeqNum>|<SenderCompID>|DEX"), computed here with Node's crypto; place one order,
//            logout.
// Every message received is printed as one line "MSG <json of the tags we check>"; the test asserts on them.
'use strict'
require('reflect-metadata')
const crypto = require('crypto')
const fs = require('fs')
const jsfix = require('jspurefix')

const [phase, port, sender, storeDir, credentialPath] = process.argv.slice(2)
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex') // DER of an Ed25519 private key, then the seed

function signLogon (credential, sendingMs, seqNum) {
  const signed = `${sendingMs}\n5000\nA\n${seqNum}|${sender}|DEX\n\n` // transports.core.signing.payload
  const seed = Buffer.from(credential.private_key, 'base64')
  const key = crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  return crypto.sign(null, Buffer.from(signed), key).toString('base64')
}
const TAGS = {
  35: 'MsgType', 34: 'MsgSeqNum', 11: 'ClOrdID', 41: 'OrigClOrdID', 37: 'OrderID', 150: 'ExecType', 39: 'OrdStatus',
  14: 'CumQty', 151: 'LeavesQty', 6: 'AvgPx', 31: 'LastPx', 32: 'LastQty', 44: 'Price', 38: 'OrderQty', 58: 'Text',
  373: 'SessionRejectReason', 7: 'BeginSeqNo', 36: 'NewSeqNo', 123: 'GapFillFlag', 43: 'PossDupFlag'
}

function describe (view) {
  const out = {}
  for (const [tag, name] of Object.entries(TAGS)) {
    const value = view.getString(Number(tag))
    if (value !== null && value !== undefined) out[name] = value
  }
  return out
}

class DexInitiator extends jsfix.AsciiSession {
  constructor (config) {
    super(config)
    this.logReceivedMsgs = false
    this.step = 0
    this.logger = config.logFactory.logger(`${this.me}`)
  }

  sendLogon () {
    if (phase !== 'signed') return super.sendLogon()
    // The signature covers the Logon's SendingTime: the transmitter is told the time it will write.
    const credential = JSON.parse(fs.readFileSync(credentialPath, 'utf8'))
    const transmitter = this.transport.transmitter
    const now = new Date()
    transmitter.time = now
    const logon = this.config.factory.logon()
    const signature = signLogon(credential, now.getTime(), transmitter.msgSeqNum)
    Object.assign(logon, { Username: credential.key_id, RawDataLength: signature.length, RawData: signature })
    this.send(this.requestLogonType, logon)
    transmitter.time = null
  }

  onReady () {
    console.log('READY ' + JSON.stringify({ phase }))
    if (phase === 'trade') {
      this.newOrder('js-1', '1', 0.2, 30000)
    } else if (phase === 'signed') {
      this.newOrder('js-s1', '1', 0.1, 29000)
    } else {
      this.newOrder('js-r1', '2', 0.1, 32000)
    }
  }

  newOrder (clOrdId, side, qty, price) {
    this.send(jsfix.MsgType.NewOrderSingle, {
      ClOrdID: clOrdId, Instrument: { Symbol: 'BTC-USD' }, Side: side, OrderQtyData: { OrderQty: qty }, OrdType: '2', Price: price,
      TimeInForce: '1', TransactTime: new Date()
    })
  }

  onApplicationMsg (msgType, view) {
    const message = describe(view)
    console.log('MSG ' + JSON.stringify(message))
    if (msgType !== jsfix.MsgType.ExecutionReport) return
    const execType = message.ExecType
    if (phase === 'recover' || phase === 'signed') {
      if (execType === '0') this.done()
      return
    }
    if (message.ClOrdID === 'js-1' && execType === 'F' && message.OrdStatus === '2') {
      this.newOrder('js-2', '2', 0.3, 31000)
    } else if (message.ClOrdID === 'js-2' && execType === '0') {
      this.send(jsfix.MsgType.OrderCancelReplaceRequest, {
        ClOrdID: 'js-3', OrigClOrdID: 'js-2', Instrument: { Symbol: 'BTC-USD' }, Side: '2', OrderQtyData: { OrderQty: 0.4 }, OrdType: '2',
        Price: 31500, TransactTime: new Date()
      })
    } else if (message.ClOrdID === 'js-3' && execType === '5') {
      this.send(jsfix.MsgType.OrderCancelRequest, {
        ClOrdID: 'js-4', OrigClOrdID: 'js-3', Instrument: { Symbol: 'BTC-USD' }, Side: '2', TransactTime: new Date()
      })
    } else if (message.ClOrdID === 'js-4' && execType === '4') {
      this.done()
    }
  }

  onDecoded (msgType, txt) {
    if (msgType !== jsfix.MsgType.ExecutionReport) console.log('SESSION ' + JSON.stringify({ msgType, txt: txt.replace(/\x01/g, '|') }))
  }

  onEncoded (msgType, txt) {
    console.log('SENT ' + JSON.stringify({ msgType, txt: txt.replace(/\x01/g, '|') }))
  }

  onLogon () {
    return true
  }

  onStopped (error) {
    console.log('STOPPED ' + JSON.stringify({ error: error ? String(error) : null }))
  }
}

class Launcher extends jsfix.SessionLauncher {
  constructor (description) {
    super(description, null, new jsfix.JsFixWinstonLogFactory(jsfix.WinstonLogger.consoleOptions('error')))
  }

  makeFactory () {
    return { makeSession: (config) => new DexInitiator(config) }
  }
}

const description = {
  application: {
    reconnectSeconds: 1,
    type: 'initiator',
    name: sender,
    tcp: { host: '127.0.0.1', port: Number(port) },
    protocol: 'ascii',
    dictionary: 'data/FIX44.xml'
  },
  EncryptMethod: 0,
  ResetSeqNumFlag: phase !== 'recover',
  store: { type: 'file', directory: storeDir },
  HeartBtInt: 5,
  SenderCompId: sender,
  TargetCompID: 'DEX',
  BeginString: 'FIX.4.4'
}

const watchdog = setTimeout(() => {
  console.log('TIMEOUT')
  process.exit(3)
}, 30000)

new Launcher(description).run().then(() => {
  clearTimeout(watchdog)
  console.log('DONE')
  process.exit(0)
}).catch((e) => {
  console.log('ERROR ' + String(e && e.stack ? e.stack : e))
  process.exit(2)
})
