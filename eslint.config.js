import neostandard from 'neostandard'

export default neostandard({
  ts: true,
  ignores: ['dist/**', 'client/dist/**', 'node_modules/**', '.tap/**', 'coverage/**']
})
