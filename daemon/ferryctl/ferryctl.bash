# bash completion for ferryctl. Install as /usr/share/bash-completion/completions/ferryctl
# (scripts/install.sh does), or `source` it. Job ids and remote names come from the running ferryd
# (ferryctl --json jobs / remotes); without one, only commands and flags complete.

_ferryctl_ids() {
  # The socket the command line names, if any, so completion asks the same ferryd.
  local sock=() i
  for ((i = 1; i < COMP_CWORD; i++)); do
    if [[ ${COMP_WORDS[i]} == --socket ]]; then sock=(--socket "${COMP_WORDS[i + 1]}"); fi
  done
  ferryctl "${sock[@]}" --json "$1" 2>/dev/null | grep -o "\"$2\":\"[^\"]*\"" | cut -d'"' -f4
}

_ferryctl() {
  local cur prev cmd="" i
  cur=${COMP_WORDS[COMP_CWORD]}
  prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="copy sync mirror jobs status watch report pause resume cancel rm metrics limits remotes remote reload"
  local globals="--socket --json --help --version"
  local create="--bwlimit --schedule --include --exclude --delete --max-delete --force --dry-run --checksum --size-only
    --interval --priority --name --wait --copy-mode --min-size --max-size --min-age --max-age --concurrency --part-size"

  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --socket) ((i++)) ;;
      -*) ;;
      *)
        cmd=${COMP_WORDS[i]}
        break
        ;;
    esac
  done

  case $prev in
    --socket)
      COMPREPLY=($(compgen -f -- "$cur"))
      return
      ;;
    --copy-mode)
      COMPREPLY=($(compgen -W "auto server stream" -- "$cur"))
      return
      ;;
  esac

  case $cmd in
    "")
      COMPREPLY=($(compgen -W "$commands $globals" -- "$cur"))
      ;;
    copy | sync | mirror)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$create --help" -- "$cur"))
      elif [[ $cur == /* || $cur == .* ]]; then
        COMPREPLY=($(compgen -d -- "$cur"))
      else
        local remotes
        remotes=$(_ferryctl_ids remotes name)
        COMPREPLY=($(compgen -W "$(for r in $remotes; do echo "$r:"; done)" -- "$cur"))
        compopt -o nospace 2>/dev/null
      fi
      ;;
    status | watch | report | pause | resume | cancel | rm)
      COMPREPLY=($(compgen -W "$(_ferryctl_ids jobs id) --help" -- "$cur"))
      ;;
    limits)
      if [[ $prev == limits ]]; then
        COMPREPLY=($(compgen -W "set --help" -- "$cur"))
      elif [[ $prev == --job ]]; then
        COMPREPLY=($(compgen -W "$(_ferryctl_ids jobs id)" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "--bwlimit --job --help" -- "$cur"))
      fi
      ;;
    remote)
      if [[ $prev == remote ]]; then
        COMPREPLY=($(compgen -W "test" -- "$cur"))
      elif [[ $prev == test ]]; then
        COMPREPLY=($(compgen -W "$(_ferryctl_ids remotes name)" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "--bucket --help" -- "$cur"))
      fi
      ;;
    *)
      COMPREPLY=($(compgen -W "--help" -- "$cur"))
      ;;
  esac
}

complete -F _ferryctl ferryctl
