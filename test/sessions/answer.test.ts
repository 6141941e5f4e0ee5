import t from 'tap'
import { answerRenderer, sessionIdOf, userIdOf } from '../../src/sessions/answer.js'
import { NO_EXTRA_FIELDS, type ExtraFields } from '../../src/config.js'
import { NO_EXTRA, type SessionRecord } from '../../src/sessions/session-record.js'

// The valid answer is rendered once, as JSON text, and sent as it is: it must
// be exactly the contract's shape, field for field.
const record: SessionRecord = {
  id: '8d5c6f0e-2c1a-4e49-9a39-0a8d3b1c2e4f',
  userId: '3f2b1a09-7e6d-4c5b-8a49-1b2c3d4e5f60',
  expiresAt: Date.UTC(2027, 0, 1, 12, 0, 0, 123),
  createdAt: Date.UTC(2026, 11, 1),
  lastActivityAt: null,
  ipAddress: '2001:db8::1',
  userAgent: 'quote " backslash \\ newline \n tab \t — ünïcødé 🚀',
  email: 'someone@example.com',
  firstName: null,
  lastName: '',
  username: 'someone',
  extra: NO_EXTRA
}

t.test('the answer is the contract\'s object, in its order, nulls as null', async t => {
  const text = answerRenderer(NO_EXTRA_FIELDS)(record)
  t.same(JSON.parse(text), {
    valid: true,
    session: {
      id: record.id,
      userId: record.userId,
      expiresAt: '2027-01-01T12:00:00.123Z',
      createdAt: '2026-12-01T00:00:00.000Z',
      lastActivityAt: null,
      ipAddress: '2001:db8::1',
      userAgent: record.userAgent
    },
    user: { id: record.userId, email: 'someone@example.com', firstName: null, lastName: '', username: 'someone' }
  })
  t.same(Object.keys(JSON.parse(text).session), ['id', 'userId', 'expiresAt', 'createdAt', 'lastActivityAt', 'ipAddress', 'userAgent'])
  t.equal(sessionIdOf(text), record.id)
  t.equal(userIdOf(text), record.userId)
})

t.test('extra fields follow the fixed ones, typed as they were read', async t => {
  const fields: ExtraFields = {
    session: [{ table: 'session', column: 'active_org_id', name: 'activeOrgId', type: 'uuid' }, { table: 'session', column: 'mfa', name: 'mfa', type: 'boolean' }],
    user: [{ table: 'user', column: 'plan', name: 'plan', type: 'json' }, { table: 'user', column: 'score', name: 'score', type: 'number' }, { table: 'user', column: 'big', name: 'big', type: 'bigint' }]
  }
  const text = answerRenderer(fields)({ ...record, extra: ['0b1c2d3e-0000-4000-8000-000000000000', true, { tier: 'pro', seats: [1, 2] }, null, '9007199254740993'] })
  const body = JSON.parse(text)
  t.same(body.session.activeOrgId, '0b1c2d3e-0000-4000-8000-000000000000')
  t.equal(body.session.mfa, true)
  t.same(body.user.plan, { tier: 'pro', seats: [1, 2] })
  t.equal(body.user.score, null)
  t.equal(body.user.big, '9007199254740993')
  t.same(Object.keys(body.user), ['id', 'email', 'firstName', 'lastName', 'username', 'plan', 'score', 'big'])
})
